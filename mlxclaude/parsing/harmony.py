"""Streaming splitter for gpt-oss Harmony replies: analysis → thinking, final/commentary → text, calls → ToolCall.

Every message's header (`<|start|>…<|message|>`) is markup and never reaches the text. A message's
content ends at `<|end|>`, `<|call|>`, `<|return|>`, the next header, or the end of the reply
(generation usually stops on `<|call|>`/`<|return|>`, so they rarely show). Text that comes with no
header is text.
"""

from __future__ import annotations

from collections.abc import Callable

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.holdback import split_safe
from mlxclaude.parsing.segment import Segment, earliest
from mlxclaude.parsing.tools.harmony import (
    ALL_MARKERS,
    HEADER_STARTS,
    MESSAGE,
    TERMINATORS,
    parse_arguments,
    parse_header,
    repair_arguments,
)

MAX_HEADER_CHARS = 400
MESSAGE_SEPARATOR = "\n\n"  # between two messages of the same kind that become one block


class HarmonySplitter:
    def __init__(
        self,
        *,
        emit_thinking: bool,
        starts_in_thinking: bool,
        calls_enabled: bool,
        finish_call: Callable[[ToolCall], ToolCall],
        on_failed_call: Callable[[str], None],
    ) -> None:
        self.emit_thinking = emit_thinking
        self.calls_enabled = calls_enabled
        self._finish_call = finish_call
        self._on_failed_call = on_failed_call
        self._buffer = ""
        self._in_header = False
        self._header = ""
        self._kind = "thinking" if starts_in_thinking else "text"  # text | thinking | call
        self._call_name = ""
        self._call_raw: list[str] = []  # the call message so far, header included
        self._segment = Segment()
        self._segment_kind = ""

    def feed(self, text: str) -> list[ReplyEvent]:
        self._buffer += text
        events: list[ReplyEvent] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> list[ReplyEvent]:
        events: list[ReplyEvent] = []
        rest, self._buffer = self._buffer, ""
        if self._in_header:
            self._in_header = False
            self._kind = "text"
            events += self._content(self._header + rest)
        else:
            events += self._content(rest)
        events += self._end_message()
        self._segment.end()
        return events

    def _step(self, events: list[ReplyEvent]) -> bool:
        if self._in_header:
            return self._step_header(events)
        found = earliest(self._buffer, HEADER_STARTS + TERMINATORS)
        if found is None:
            safe, self._buffer = split_safe(self._buffer, ALL_MARKERS)
            events += self._content(safe)
            return False
        start, marker = found
        events += self._content(self._buffer[:start])
        self._buffer = self._buffer[start + len(marker):]
        events += self._end_message(terminator=marker if marker in TERMINATORS else "")
        if marker in HEADER_STARTS:
            self._in_header = True
            self._header = marker
        return True

    def _step_header(self, events: list[ReplyEvent]) -> bool:
        at = self._buffer.find(MESSAGE)
        if at < 0:
            if len(self._header) + len(self._buffer) > MAX_HEADER_CHARS:
                self._not_a_header(events)
                return True
            return False
        header = self._header + self._buffer[:at]
        self._buffer = self._buffer[at + len(MESSAGE):]
        self._in_header = False
        parsed = parse_header(header)
        if parsed.recipient and self.calls_enabled:
            self._kind, self._call_name, self._call_raw = "call", parsed.tool_name, [header + MESSAGE]
        elif parsed.recipient:
            self._kind = "text"
            events += self._content(header + MESSAGE)  # no tools in this request: the call stays text
        else:
            self._kind = "thinking" if parsed.channel == "analysis" else "text"
        return True

    def _not_a_header(self, events: list[ReplyEvent]) -> None:
        """Too long to be a header: it was text all along."""
        self._in_header = False
        self._kind = "text"
        text, self._header = self._header, ""
        events += self._content(text)

    def _content(self, text: str) -> list[ReplyEvent]:
        if not text:
            return []
        if self._kind == "call":
            self._call_raw.append(text)
            return []
        piece = ThinkingPiece if self._kind == "thinking" else TextPiece
        if piece is ThinkingPiece and not self.emit_thinking:
            return []
        if self._segment_kind != self._kind:
            self._segment.end()
            self._segment_kind = self._kind
        return self._segment.add(text, piece)

    def _end_message(self, terminator: str = "") -> list[ReplyEvent]:
        """Close the current message; a call is parsed now, text and thinking continue as one block."""
        if self._kind != "call":
            if self._segment.started:
                self._segment.add(MESSAGE_SEPARATOR, TextPiece)  # held as trailing whitespace
            self._kind = "text"
            return []
        header, content = self._call_raw[0], "".join(self._call_raw[1:])
        raw = header + content
        name = self._call_name
        self._kind, self._call_name, self._call_raw = "text", "", []
        arguments = parse_arguments(content)
        if arguments is None:
            arguments = repair_arguments(content)
        if arguments is None:
            self._on_failed_call(raw + terminator)
            return self._content(raw + terminator)
        self._segment.end()
        self._segment_kind = ""
        return [self._finish_call(ToolCall(name, arguments))]
