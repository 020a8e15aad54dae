"""Group reply events into Anthropic content blocks; shared by the streaming and non-streaming encoders."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.protocol.server_tools import ServerToolUse, WebSearchResult

WireEvent = tuple[str, dict[str, Any]]

JSON_FRAGMENT_MAX_CHARS = 64

_EMPTY_BLOCKS: dict[str, dict[str, str]] = {
    "text": {"type": "text", "text": ""},
    "thinking": {"type": "thinking", "thinking": "", "signature": ""},
}


def thinking_signature(thinking: str) -> str:
    """An opaque, non-empty signature; Claude Code mishandles thinking blocks without one."""
    digest = hashlib.sha256(thinking.encode("utf-8")).hexdigest()
    return base64.b64encode(f"mlxclaude:{digest}".encode("ascii")).decode("ascii")


def new_tool_use_id() -> str:
    return f"toolu_{uuid.uuid4().hex}"


def json_fragments(value: dict[str, Any], max_chars: int = JSON_FRAGMENT_MAX_CHARS) -> list[str]:
    """`json.dumps(value)` cut into pieces of at most `max_chars`, never inside an escape sequence."""
    text = json.dumps(value, ensure_ascii=False)
    fragments: list[str] = []
    start = position = 0
    while position < len(text):
        if text[position] == "\\":
            step = 6 if text[position + 1] == "u" else 2
        else:
            step = 1
        if position > start and position + step - start > max_chars:
            fragments.append(text[start:position])
            start = position
        position += step
    fragments.append(text[start:])
    return fragments


class BlockAssembler:
    """Turns reply events into content-block wire events and keeps the finished content alongside.

    Consecutive text (or thinking) pieces extend the open block; any change of kind closes it.
    Each tool call is a block of its own. Indices run 0, 1, 2… and blocks never overlap.
    """

    def __init__(self, *, omit_thinking: bool = False) -> None:
        self.content: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._omit_thinking = omit_thinking  # thinking blocks stay empty (display "omitted"), still signed
        self._hidden_thinking = ""

    @property
    def blocks_started(self) -> int:
        return len(self.content)

    @property
    def has_tool_use(self) -> bool:
        return any(block["type"] == "tool_use" for block in self.content)

    def feed(self, event: "ReplyEvent | ServerToolUse | WebSearchResult") -> list[WireEvent]:
        if isinstance(event, ServerToolUse):
            return self._server_tool_use(event)
        if isinstance(event, WebSearchResult):
            events = self.close()
            events.append(self._start(event.block()))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": len(self.content) - 1}))
            return events
        if isinstance(event, TextPiece):
            return self._extend("text", event.text)
        if isinstance(event, ThinkingPiece):
            return self._extend("thinking", event.text)
        if isinstance(event, ToolCall):
            return self._tool_use(event)
        raise TypeError(f"not a reply event: {event!r}")

    def close(self) -> list[WireEvent]:
        """Close the open block, if any."""
        block, self._open = self._open, None
        if block is None:
            return []
        index = len(self.content) - 1
        events: list[WireEvent] = []
        if block["type"] == "thinking":
            block["signature"] = thinking_signature(block["thinking"] or self._hidden_thinking)
            self._hidden_thinking = ""
            events.append(_delta(index, {"type": "signature_delta", "signature": block["signature"]}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        return events

    def _extend(self, kind: str, text: str) -> list[WireEvent]:
        if not text:
            return []
        events: list[WireEvent] = []
        if self._open is None or self._open["type"] != kind:
            events += self.close()
            events.append(self._start(dict(_EMPTY_BLOCKS[kind])))
            self._open = self.content[-1]
        if kind == "thinking" and self._omit_thinking:
            self._hidden_thinking += text
            return events
        self._open[kind] += text
        delta_type = "text_delta" if kind == "text" else "thinking_delta"
        events.append(_delta(len(self.content) - 1, {"type": delta_type, kind: text}))
        return events

    def _server_tool_use(self, use: ServerToolUse) -> list[WireEvent]:
        return self._call_block({"type": "server_tool_use", "id": use.id, "name": use.name}, use.input)

    def _tool_use(self, call: ToolCall) -> list[WireEvent]:
        return self._call_block({"type": "tool_use", "id": new_tool_use_id(), "name": call.name}, call.arguments)

    def _call_block(self, head: dict[str, Any], arguments: dict[str, Any]) -> list[WireEvent]:
        """A whole call as its block: started with an empty input, the input as JSON deltas, then stopped."""
        events = self.close()
        events.append(self._start({**head, "input": {}}))
        index = len(self.content) - 1
        for fragment in json_fragments(arguments):
            events.append(_delta(index, {"type": "input_json_delta", "partial_json": fragment}))
        self.content[-1]["input"] = arguments
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        return events

    def _start(self, initial_block: dict[str, Any]) -> WireEvent:
        index = len(self.content)
        self.content.append(dict(initial_block))
        return (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": initial_block},
        )


def _delta(index: int, delta: dict[str, Any]) -> WireEvent:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
