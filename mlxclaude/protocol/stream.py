"""Encode reply events as the Anthropic Messages SSE stream."""

from __future__ import annotations

import json
from typing import Any

from mlxclaude.parsing.events import ReplyEvent
from mlxclaude.protocol.blocks import BlockAssembler, WireEvent
from mlxclaude.protocol.usage import Usage
from mlxclaude.redaction import redact


def encode_sse(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event. The SDKs dispatch on the `event:` line, so it is always present."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode("utf-8")


def error_event(error_type: str, message: str) -> WireEvent:
    return ("error", {"type": "error", "error": {"type": error_type, "message": redact(message)}})


class StreamEncoder:
    """message_start, then content blocks in order, then message_delta and message_stop."""

    def __init__(self, message_id: str, model: str, *, omit_thinking: bool = False) -> None:
        self.message_id = message_id
        self.model = model
        self._blocks = BlockAssembler(omit_thinking=omit_thinking)

    @property
    def blocks_started(self) -> int:
        return self._blocks.blocks_started

    @property
    def has_tool_use(self) -> bool:
        return self._blocks.has_tool_use

    def start(self, usage: Usage) -> list[WireEvent]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": usage.to_wire(),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, event: ReplyEvent) -> list[WireEvent]:
        return self._blocks.feed(event)

    def finish(self, stop_reason: str, stop_sequence: str | None, usage: Usage) -> list[WireEvent]:
        """Close the open block and end the message; `usage` holds cumulative totals."""
        events = self._blocks.close()
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": usage.to_wire(),
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def ping(self) -> WireEvent:
        return ("ping", {"type": "ping"})
