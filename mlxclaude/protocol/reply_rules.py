"""What every reply obeys, whoever generated it (a local model or a remote engine): one step applied to the
reply events in order.

- the turn ends with its tool calls: no text after the first call;
- tool_choice: with `disable_parallel_tool_use` only the first call is kept; under "tool" only calls to that
  tool (under "none" the local parser knows no tools; a remote engine is told);
- an exact repeat of a call already in the reply ends the reply (a small model otherwise repeats it until
  max_tokens);
- arguments are finite JSON: ±inf (a model's `1e999`) → ±max float, NaN → null.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from typing import Any

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ToolCall
from mlxclaude.protocol.chat import ChatRequest


class ReplyRules:
    def __init__(self, chat: ChatRequest) -> None:
        self._single_call = chat.tool_choice.disable_parallel_tool_use
        self._only_tool = chat.tool_choice.name if chat.tool_choice.type == "tool" else None
        self._calls_made: set[str] = set()
        self.repeated_call = False
        self.tool_calls = 0

    @property
    def done(self) -> bool:
        """Nothing more can reach the reply (a repeat, or the one call allowed has come)."""
        return self.repeated_call or (self._single_call and self.tool_calls > 0)

    def apply(self, events: list[ReplyEvent]) -> list[ReplyEvent]:
        kept: list[ReplyEvent] = []
        for event in events:
            if isinstance(event, ToolCall):
                if not self._keeps(event):
                    continue
                self.tool_calls += 1
                event = finite_call(event)
            elif self.tool_calls and isinstance(event, TextPiece):
                continue  # no text after tool calls: the turn ends with them
            kept.append(event)
        return kept

    def _keeps(self, call: ToolCall) -> bool:
        if self.repeated_call or (self._single_call and self.tool_calls):
            return False  # disable_parallel_tool_use: the first call only
        if self._only_tool is not None and call.name != self._only_tool:
            return False
        key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
        if key in self._calls_made:
            self.repeated_call = True
            return False
        self._calls_made.add(key)
        return True


def finite(value: Any) -> Any:
    """`value` with JSON's impossible floats made possible: ±inf → ±max float, NaN → None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def finite_call(call: ToolCall) -> ToolCall:
    arguments = finite(call.arguments)
    return call if arguments == call.arguments else replace(call, arguments=arguments)
