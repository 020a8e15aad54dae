"""Bare JSON tool calls — a call object written without any markup — decided while streaming.

    {"name": "get_weather", "arguments": {"city": "Paris"}}
    ```json
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    ```

The text from where such a call could start is held until it is clear: a rejected candidate goes on
as text (nothing is lost); an accepted one becomes calls. The region grammar is: an optional code fence
(```, ```json, ```tool_call, ```tool_code), an optional `<|python_tag|>`, JSON values separated by
whitespace, `;` or `,`, and the closing fence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import CALL_KEYS
from mlxclaude.parsing.tools.repair import repair_json
from mlxclaude.parsing.tools.scan import JsonValueScanner

FENCE = "```"
PYTHON_TAG = "<|python_tag|>"
FENCE_LANGUAGES = frozenset({"", "json", "tool_call", "tool_code"})
START_CHARS = "{[`"
_LANGUAGE = re.compile(r"[A-Za-z_\-]*")

Accept = Callable[[list[Any]], "list[ToolCall] | None"]


class Verdict(Enum):
    HOLD = auto()
    REJECT = auto()
    ACCEPT = auto()


@dataclass
class Decision:
    verdict: Verdict
    calls: list[ToolCall] = field(default_factory=list)
    rest: str = ""  # text after the calls (ACCEPT)


_HOLD = Decision(Verdict.HOLD)
_REJECT = Decision(Verdict.REJECT)


class _Phase(Enum):
    START = auto()
    TAG = auto()
    VALUES = auto()
    VALUE = auto()
    DONE = auto()


class BareCandidate:
    """Text from a possible bare call on. `accept(values)` says whether JSON values are calls (to known tools).

    allow_trailing_text: text after the calls is fine (it is handed back as `rest`); otherwise the
    calls must end the reply.
    """

    def __init__(self, accept: Accept, *, allow_trailing_text: bool) -> None:
        self._parts: list[str] = []
        self._joined = ""
        self._accept = accept
        self._allow_trailing_text = allow_trailing_text
        self._phase = _Phase.START
        self._pos = 0
        self._fenced = False
        self._fence_closed = False
        self._found: list[Any] = []
        self._value_start = 0
        self._scanner: JsonValueScanner | None = None

    @property
    def text(self) -> str:
        """Everything held so far."""
        if self._parts:
            self._joined += "".join(self._parts)
            self._parts = []
        return self._joined

    def add(self, text: str) -> None:
        if text:
            self._parts.append(text)
            if self._phase is _Phase.VALUE and self._scanner is not None:
                self._scanner.feed(text)

    def feed(self, text: str) -> Decision:
        self.add(text)
        if self._phase is _Phase.VALUE and self._scanner is not None and self._scanner.result is None:
            key = self._scanner.first_key
            if key is None or key in CALL_KEYS:
                return _HOLD  # still inside the value: nothing to decide (and nothing to join)
        return self._advance(final=False)

    def finish(self) -> Decision:
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> Decision:
        while True:
            decision = getattr(self, f"_{self._phase.name.lower()}")(final)
            if decision is not None:
                return decision

    # Each phase returns a Decision, or None after moving to another phase.

    def _start(self, final: bool) -> Decision | None:
        text = self.text
        if not text.startswith("`"):
            self._phase = _Phase.TAG
            return None
        if len(text) < len(FENCE):
            return _REJECT if final or not FENCE.startswith(text) else _HOLD
        if not text.startswith(FENCE):
            return _REJECT
        language_end = _LANGUAGE.match(text, len(FENCE)).end()  # type: ignore[union-attr]
        if language_end >= len(text):
            return _REJECT if final else _HOLD
        if text[len(FENCE):language_end].lower() not in FENCE_LANGUAGES or not text[language_end].isspace():
            return _REJECT
        self._fenced = True
        self._pos = language_end
        self._phase = _Phase.TAG
        return None

    def _tag(self, final: bool) -> Decision | None:
        pos = self._skip_space(self._pos)
        rest = self.text[pos:]
        if rest and len(rest) < len(PYTHON_TAG) and PYTHON_TAG.startswith(rest):
            return _REJECT if final else _HOLD
        if rest.startswith(PYTHON_TAG):
            pos += len(PYTHON_TAG)
        self._pos = pos
        self._phase = _Phase.VALUES
        return None

    def _values(self, final: bool) -> Decision | None:
        text, pos = self.text, self._skip_space(self._pos)
        if self._found:
            while pos < len(text) and text[pos] in ";,":
                pos = self._skip_space(pos + 1)
        self._pos = pos
        if pos >= len(text):
            if not final:
                return _HOLD
            self._phase = _Phase.DONE
            return None
        char = text[pos]
        if char in "{[":
            self._value_start = pos
            self._scanner = JsonValueScanner()
            self._scanner.feed(text[pos:])
            self._phase = _Phase.VALUE
            return None
        if self._fenced and not self._fence_closed:
            if text.startswith(FENCE, pos):
                self._pos = pos + len(FENCE)
                self._fence_closed = True
                self._phase = _Phase.DONE
                return None
            if FENCE.startswith(text[pos:]) and not final:
                return _HOLD
        self._phase = _Phase.DONE
        return None

    def _value(self, final: bool) -> Decision | None:
        assert self._scanner is not None
        end = self._scanner.result
        if end is not None and end >= 0:
            end += self._value_start
        if end == -1:
            return _REJECT
        if end is None:
            key = self._scanner.first_key
            if key is not None and key not in CALL_KEYS:
                return _REJECT
            if not final:
                return _HOLD
            value = repair_json(self.text[self._value_start:])  # cut at max_tokens
            end = len(self.text)
        else:
            value = _loads(self.text[self._value_start:end])
        if value is None or self._accept([value]) is None:
            return _REJECT
        self._found.append(value)
        self._pos = end
        self._phase = _Phase.VALUES
        return None

    def _done(self, final: bool) -> Decision | None:
        if not self._found:
            return _REJECT
        calls = self._accept(self._found)
        if calls is None:
            return _REJECT
        rest = self.text[self._pos:]
        if rest.strip():
            return Decision(Verdict.ACCEPT, calls, rest) if self._allow_trailing_text else _REJECT
        return Decision(Verdict.ACCEPT, calls, rest) if final else _HOLD

    def _skip_space(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        return pos


def _loads(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError):
        return repair_json(text)
