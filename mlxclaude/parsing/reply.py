"""Split a model's streamed reply into thinking, text and tool calls, as early as is safe."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum, auto
from typing import Any

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.harmony import HarmonySplitter
from mlxclaude.parsing.holdback import first_char_of, split_safe
from mlxclaude.parsing.segment import Segment, earliest
from mlxclaude.parsing.tools import ToolFormat
from mlxclaude.parsing.tools.bare import START_CHARS, BareCandidate, Verdict
from mlxclaude.parsing.tools.calls import calls_from_values, repair_json_calls
from mlxclaude.parsing.tools.catalog import ToolCatalog
from mlxclaude.parsing.tools.format import CallMarker
from mlxclaude.parsing.tools.scan import CloseScanner


class _Mode(Enum):
    TEXT = auto()
    THINKING = auto()
    TOOL_CALL = auto()
    BARE = auto()


class ReplyParser:
    """Streaming splitter: `feed` chunks of model output, then `finish` once.

    - `<think>…</think>` becomes ThinkingPiece events, or nothing when `emit_thinking` is False.
    - Tool calls in `tool_format` (any of its markers, or bare JSON where the family allows it) become
      ToolCall events. A body that doesn't parse is repaired when its intent is unambiguous
      (tools/repair.py); otherwise it stays text and its raw text is recorded in `failed_calls`.
    - Everything else becomes TextPiece events; no part of a call's markup ever reaches them.
    Each run of text or thinking is stripped of surrounding whitespace; nothing else is lost.

    `tools`: the request's tools (HF `{"type": "function", "function": {...}}` or Anthropic form).
      None: not told — any name is a call, nothing is coerced, bare JSON calls need Llama 3's exact shape.
      A list: calls get their declared names (`functions.x`, case) and arguments coerced to the schema;
      a call to an unknown name is still a ToolCall (Claude Code answers it with an error result the
      model can recover from, where leaked markup would be a dead end); bare JSON must name a known tool.
      An empty list: the request has no tools; call markup stays text (Harmony channels still split).
    """

    def __init__(
        self,
        *,
        emit_thinking: bool,
        starts_in_thinking: bool = False,
        think_open: str = "<think>",
        think_close: str = "</think>",
        tool_format: ToolFormat | None = None,
        tools: Iterable[Any] | None = None,
    ) -> None:
        self.emit_thinking = emit_thinking
        self.think_open = think_open
        self.think_close = think_close
        self.tool_format = tool_format
        self.catalog = ToolCatalog(list(tools) if tools is not None else None)
        self.tool_calls_seen = 0
        self.failed_calls: list[str] = []
        self._calls_enabled = tool_format is not None and (not self.catalog.given or bool(self.catalog))
        self._markers: tuple[CallMarker, ...] = tool_format.markers if self._calls_enabled and tool_format else ()
        self._text_markers = (think_open, *(marker.open for marker in self._markers))  # looked for at every token
        self._text_marker_start = first_char_of(self._text_markers)  # text without one holds no part of a marker
        self._mode = _Mode.THINKING if starts_in_thinking else _Mode.TEXT
        self._buffer = ""
        self._segment = Segment()
        self._last_text_char = ""  # the last character of text consumed (for line-start bare calls)
        self._marker: CallMarker | None = None
        self._scanner: CloseScanner | None = None
        self._call_parts: list[str] = []
        self._bare: BareCandidate | None = None
        self._harmony: HarmonySplitter | None = None
        if tool_format is not None and tool_format.splitter == "harmony":
            self._harmony = HarmonySplitter(
                emit_thinking=emit_thinking,
                starts_in_thinking=starts_in_thinking,
                calls_enabled=self._calls_enabled,
                finish_call=self._finish_call,
                on_failed_call=self.failed_calls.append,
            )

    def feed(self, text: str) -> list[ReplyEvent]:
        if self._harmony is not None:
            return self._count(self._harmony.feed(text))
        self._buffer += text
        events: list[ReplyEvent] = []
        while self._step(events):
            pass
        return self._count(events)

    def finish(self) -> list[ReplyEvent]:
        if self._harmony is not None:
            return self._count(self._harmony.finish())
        events: list[ReplyEvent] = []
        rest, self._buffer = self._buffer, ""
        if self._mode is _Mode.THINKING:
            events += self._thinking(rest)
        elif self._mode is _Mode.TEXT:
            events += self._text(rest)
        elif self._mode is _Mode.BARE:
            events += self._finish_bare(rest)
        else:
            events += self._unterminated_tool_call(rest)
        self._segment.end()
        self._mode = _Mode.TEXT
        return self._count(events)

    def _count(self, events: list[ReplyEvent]) -> list[ReplyEvent]:
        self.tool_calls_seen += sum(isinstance(event, ToolCall) for event in events)
        return events

    def _step(self, events: list[ReplyEvent]) -> bool:
        """Consume what can be decided from the buffer; True if the mode changed and another step may help."""
        if self._mode is _Mode.THINKING:
            return self._step_thinking(events)
        if self._mode is _Mode.TEXT:
            return self._step_text(events)
        if self._mode is _Mode.BARE:
            return self._step_bare(events)
        return self._step_tool_call(events)

    # thinking

    def _step_thinking(self, events: list[ReplyEvent]) -> bool:
        end = self._buffer.find(self.think_close)
        if end < 0:
            safe, self._buffer = split_safe(self._buffer, (self.think_close,))
            events += self._thinking(safe)
            return False
        events += self._thinking(self._buffer[:end])
        self._buffer = self._buffer[end + len(self.think_close) :]
        self._segment.end()
        self._last_text_char = ""
        self._mode = _Mode.TEXT
        return True

    # text

    def _step_text(self, events: list[ReplyEvent]) -> bool:
        markers = self._text_markers
        if self._text_marker_start.search(self._buffer) is None:  # the usual piece of prose or code
            found, limit = None, len(self._buffer)
        else:
            found = earliest(self._buffer, markers)
            limit = len(split_safe(self._buffer, markers)[0]) if found is None else found[0]
        bare_at = self._bare_start(limit)
        if bare_at is not None:
            events += self._text(self._buffer[:bare_at])
            self._buffer = self._buffer[bare_at:]
            self._start_bare()
            return True
        if found is None:
            events += self._text(self._buffer[:limit])
            self._buffer = self._buffer[limit:]
            return False
        start, marker = found
        events += self._text(self._buffer[:start])
        self._buffer = self._buffer[start + len(marker) :]
        if marker == self.think_open:
            self._segment.end()
            self._mode = _Mode.THINKING
            return True
        # The text segment stays open: if the call turns out malformed, it continues as text.
        self._marker = next(m for m in self._markers if m.open == marker)
        self._scanner = CloseScanner(self._marker.close, self._marker.quotes, self._marker.body_kind)
        self._mode = _Mode.TOOL_CALL
        return True

    # bare JSON calls

    def _bare_start(self, limit: int) -> int | None:
        """Where a bare JSON call could start in the buffer's first `limit` characters, if anywhere.

        At the start of a text segment (after optional whitespace), and for "line" families also right
        after a newline.
        """
        fmt, buffer = self.tool_format, self._buffer
        if not self._calls_enabled or fmt is None or fmt.bare is None or limit <= 0:
            return None
        if not self._segment.started:
            first = len(buffer) - len(buffer.lstrip())
            if first < limit and buffer[first] in START_CHARS:
                return first
        if fmt.bare != "line":
            return None
        if buffer[0] in START_CHARS and self._last_text_char in ("\n", ""):
            return 0
        at = buffer.find("\n", 0, limit)
        while 0 <= at < limit - 1:
            if buffer[at + 1] in START_CHARS:
                return at + 1
            at = buffer.find("\n", at + 1, limit)
        return None

    def _start_bare(self) -> None:
        assert self.tool_format is not None
        at_segment_start = not self._segment.started
        self._bare = BareCandidate(
            self._accept_bare,
            allow_trailing_text=self.tool_format.bare == "line" and at_segment_start,
        )
        self._mode = _Mode.BARE

    def _accept_bare(self, values: list[Any]) -> list[ToolCall] | None:
        calls = calls_from_values(values, strict_keys=True)
        if calls is None:
            return None
        if self.catalog.given:
            if not all(self.catalog.knows(call.name) for call in calls):
                return None
        elif self.tool_format is None or self.tool_format.bare != "line":
            return None  # Hermes-style bare JSON needs the tool names to be told apart from other JSON
        return calls

    def _step_bare(self, events: list[ReplyEvent]) -> bool:
        assert self._bare is not None
        text, self._buffer = self._buffer, ""
        decision = self._bare.feed(text)
        return self._after_bare(decision, events)

    def _finish_bare(self, rest: str) -> list[ReplyEvent]:
        assert self._bare is not None
        self._bare.add(rest)
        events: list[ReplyEvent] = []
        decision = self._bare.finish()
        self._after_bare(decision, events)
        # After a rejection the text was handed back to the buffer: finish it as text (with its markers).
        if self._buffer:
            more = self._buffer
            self._buffer = ""
            events += self._drain(more)
        return events

    def _drain(self, text: str) -> list[ReplyEvent]:
        """Parse `text` to the end as if the reply stopped after it."""
        events = self.feed(text)
        self.tool_calls_seen -= sum(isinstance(event, ToolCall) for event in events)  # counted again by finish
        rest, self._buffer = self._buffer, ""
        if self._mode is _Mode.BARE:
            return events + self._finish_bare(rest)
        if self._mode is _Mode.TOOL_CALL:
            return events + self._unterminated_tool_call(rest)
        if self._mode is _Mode.THINKING:
            return events + self._thinking(rest)
        return events + self._text(rest)

    def _after_bare(self, decision: Any, events: list[ReplyEvent]) -> bool:
        assert self._bare is not None
        if decision.verdict is Verdict.HOLD:
            return False
        candidate, self._bare = self._bare, None
        self._mode = _Mode.TEXT
        if decision.verdict is Verdict.ACCEPT:
            self._segment.end()
            self._last_text_char = ""
            events += [self._finish_call(call) for call in decision.calls]
            self._buffer = decision.rest + self._buffer
            return True
        # Not a call: its first character is text, and scanning goes on from the next one.
        events += self._text(candidate.text[0])
        self._buffer = candidate.text[1:] + self._buffer
        return True

    # tool calls in markers

    def _step_tool_call(self, events: list[ReplyEvent]) -> bool:
        """The buffer holds only text not yet given to the scanner; the body so far is in `_call_parts`."""
        assert self._marker is not None and self._scanner is not None
        new, self._buffer = self._buffer, ""
        end = self._scanner.feed(new)
        self._call_parts.append(new)
        if end is None:
            return False
        marker = self._marker
        whole = "".join(self._call_parts)
        self._call_parts = []
        body = whole[:end]
        self._buffer = whole[end + len(marker.close) :]
        events += self._tool_call(marker, body, raw=marker.open + body + marker.close)
        self._mode = _Mode.TEXT
        return True

    def _unterminated_tool_call(self, rest: str) -> list[ReplyEvent]:
        assert self._marker is not None
        marker = self._marker
        body = "".join(self._call_parts) + rest
        self._call_parts = []
        self._mode = _Mode.TEXT
        if marker.close:
            at = body.find(marker.close)  # the scanner may have been misled by a broken quote
            if at >= 0:
                after = body[at + len(marker.close) :]
                events = self._tool_call(marker, body[:at], raw=marker.open + body[: at + len(marker.close)])
                return events + self._drain(after)
            complete_part, _ = split_safe(body, (marker.close,))
            return self._tool_call(marker, complete_part, raw=marker.open + body)
        return self._tool_call(marker, body, raw=marker.open + body)

    def _tool_call(self, marker: CallMarker, body: str, *, raw: str) -> list[ReplyEvent]:
        full_body = marker.open + body if marker.keep_open else body
        calls = _parse_or_repair(marker, full_body)
        self._marker = self._scanner = None
        if not calls:
            self.failed_calls.append(raw)
            return self._text(raw)
        self._segment.end()
        self._last_text_char = ""
        return [self._finish_call(call) for call in calls]

    def _finish_call(self, call: ToolCall) -> ToolCall:
        return self.catalog.finish(call)

    # pieces

    def _text(self, text: str) -> list[ReplyEvent]:
        if text:
            self._last_text_char = text[-1]
        return self._segment.add(text, TextPiece)

    def _thinking(self, text: str) -> list[ReplyEvent]:
        if not self.emit_thinking:
            return []
        return self._segment.add(text, ThinkingPiece)


def _parse_or_repair(marker: CallMarker, body: str) -> list[ToolCall] | None:
    try:
        calls = marker.parse(body)
        if not calls:
            calls = (marker.repair or repair_json_calls)(body)
    except Exception:  # a parser bug must not take the reply down: the call stays text
        return None
    return calls or None
