"""Split a model's streamed reply into thinking, text and tool calls, as early as is safe."""

from __future__ import annotations

from enum import Enum, auto

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.holdback import split_safe
from mlxclaude.parsing.tools import ToolFormat


class _Mode(Enum):
    TEXT = auto()
    THINKING = auto()
    TOOL_CALL = auto()


class _Segment:
    """One run of text or thinking, stripped at both ends.

    Trailing whitespace is held until something other than whitespace follows it, so the
    result is the same however the stream was chunked.
    """

    def __init__(self) -> None:
        self._started = False
        self._pending_whitespace = ""

    def add(self, text: str, piece: type[TextPiece] | type[ThinkingPiece]) -> list[ReplyEvent]:
        if not self._started:
            text = text.lstrip()
            if not text:
                return []
            self._started = True
        text = self._pending_whitespace + text
        body = text.rstrip()
        self._pending_whitespace = text[len(body) :]
        return [piece(body)] if body else []

    def end(self) -> None:
        self._started = False
        self._pending_whitespace = ""


class ReplyParser:
    """Streaming splitter: `feed` chunks of model output, then `finish` once.

    - `<think>…</think>` becomes ThinkingPiece events, or nothing when `emit_thinking` is False.
    - Tool calls in `tool_format` become ToolCall events; a body that doesn't parse stays text.
    - Everything else becomes TextPiece events.
    Each run of text or thinking is stripped of surrounding whitespace; nothing else is lost.
    """

    def __init__(
        self,
        *,
        emit_thinking: bool,
        starts_in_thinking: bool = False,
        think_open: str = "<think>",
        think_close: str = "</think>",
        tool_format: ToolFormat | None = None,
    ) -> None:
        self.emit_thinking = emit_thinking
        self.think_open = think_open
        self.think_close = think_close
        self.tool_format = tool_format
        self.tool_calls_seen = 0
        self._mode = _Mode.THINKING if starts_in_thinking else _Mode.TEXT
        self._buffer = ""
        self._segment = _Segment()

    @property
    def _text_markers(self) -> tuple[str, ...]:
        if self.tool_format is None:
            return (self.think_open,)
        return (self.think_open, self.tool_format.open)

    def feed(self, text: str) -> list[ReplyEvent]:
        self._buffer += text
        events: list[ReplyEvent] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> list[ReplyEvent]:
        events: list[ReplyEvent] = []
        rest, self._buffer = self._buffer, ""
        if self._mode is _Mode.THINKING:
            events += self._thinking(rest)
        elif self._mode is _Mode.TEXT:
            events += self._text(rest)
        else:
            events += self._unterminated_tool_call(rest)
        self._segment.end()
        self._mode = _Mode.TEXT
        return events

    def _step(self, events: list[ReplyEvent]) -> bool:
        """Consume what can be decided from the buffer; True if the mode changed and another step may help."""
        if self._mode is _Mode.THINKING:
            return self._step_thinking(events)
        if self._mode is _Mode.TEXT:
            return self._step_text(events)
        return self._step_tool_call(events)

    def _step_thinking(self, events: list[ReplyEvent]) -> bool:
        end = self._buffer.find(self.think_close)
        if end < 0:
            safe, self._buffer = split_safe(self._buffer, (self.think_close,))
            events += self._thinking(safe)
            return False
        events += self._thinking(self._buffer[:end])
        self._buffer = self._buffer[end + len(self.think_close) :]
        self._segment.end()
        self._mode = _Mode.TEXT
        return True

    def _step_text(self, events: list[ReplyEvent]) -> bool:
        found = _earliest(self._buffer, self._text_markers)
        if found is None:
            safe, self._buffer = split_safe(self._buffer, self._text_markers)
            events += self._text(safe)
            return False
        start, marker = found
        events += self._text(self._buffer[:start])
        self._buffer = self._buffer[start + len(marker) :]
        if marker == self.think_open:
            self._segment.end()
            self._mode = _Mode.THINKING
        else:
            # The text segment stays open: if the call turns out malformed, it continues as text.
            self._mode = _Mode.TOOL_CALL
        return True

    def _step_tool_call(self, events: list[ReplyEvent]) -> bool:
        assert self.tool_format is not None
        end = self._buffer.find(self.tool_format.close)
        if end < 0:
            return False
        body = self._buffer[:end]
        self._buffer = self._buffer[end + len(self.tool_format.close) :]
        events += self._tool_call(body, raw=self.tool_format.open + body + self.tool_format.close)
        self._mode = _Mode.TEXT
        return True

    def _unterminated_tool_call(self, body: str) -> list[ReplyEvent]:
        assert self.tool_format is not None
        complete_part, _ = split_safe(body, (self.tool_format.close,))
        return self._tool_call(complete_part, raw=self.tool_format.open + body)

    def _tool_call(self, body: str, *, raw: str) -> list[ReplyEvent]:
        assert self.tool_format is not None
        calls: list[ToolCall] | None = self.tool_format.parse(body)
        if not calls:
            return self._text(raw)
        self._segment.end()
        self.tool_calls_seen += len(calls)
        return list(calls)

    def _text(self, text: str) -> list[ReplyEvent]:
        return self._segment.add(text, TextPiece)

    def _thinking(self, text: str) -> list[ReplyEvent]:
        if not self.emit_thinking:
            return []
        return self._segment.add(text, ThinkingPiece)


def _earliest(buffer: str, markers: tuple[str, ...]) -> tuple[int, str] | None:
    """The first marker occurrence in `buffer`; at equal positions the longer marker wins."""
    best: tuple[int, int, str] | None = None
    for marker in markers:
        start = buffer.find(marker)
        if start >= 0 and (best is None or (start, -len(marker)) < best[:2]):
            best = (start, -len(marker), marker)
    return None if best is None else (best[0], best[2])
