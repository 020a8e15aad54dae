"""One assistant turn: prompt -> engine text -> stop sequences -> reply parser -> reply events.

Shared by the streaming and non-streaming routes. No FastAPI here.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from typing import Any, Union

from mlxclaude.engine.backend import GenerationProgress, GenerationStats, ModelInfo, RenderedPrompt
from mlxclaude.engine.jobs import GenerationRequest
from mlxclaude.engine.worker import JobResults, Worker
from mlxclaude.parsing.events import ReplyEvent, TextPiece, ToolCall
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.stops import StopMatcher
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.usage import Usage
from mlxclaude.server.inflight import InFlight


@dataclass
class TurnEnd:
    stop_reason: str
    stop_sequence: str | None
    usage: Usage
    stats: GenerationStats
    failed_tool_calls: tuple[str, ...] = ()


TurnItem = Union[ReplyEvent, TurnEnd]


def output_budget(prompt_tokens: int, requested: int, info: ModelInfo, *, cap: int | None, policy: str) -> int:
    """How many tokens may be generated; raises the wording Claude Code recovers from when none can."""
    context = info.context_length
    if prompt_tokens >= context:
        raise ApiError.prompt_too_long(prompt_tokens, context)
    if prompt_tokens + requested > context:
        if policy == "error":
            raise ApiError.context_exceeded(prompt_tokens, requested, context)
        requested = context - prompt_tokens
    if cap:
        requested = min(requested, cap)
    return requested


def make_parser(chat: ChatRequest, info: ModelInfo, prompt: RenderedPrompt) -> ReplyParser:
    """The reply parser; under tool_choice "none" it knows no tools, so no reply becomes a tool_use."""
    return ReplyParser(
        emit_thinking=chat.thinking != "disabled",
        starts_in_thinking=prompt.starts_in_thinking,
        think_open=info.think_open or "<think>",
        think_close=info.think_close or "</think>",
        tool_format=info.tool_format,
        tools=[] if chat.tool_choice.type == "none" else chat.tools,
    )


class TurnFilter:
    """Applies stop sequences and the parser to the raw text, and decides the stop reason.

    tool_choice: no text after a call; with `disable_parallel_tool_use` only the first call is kept
    (`done` turns true with it, so the engine can stop); under "tool" only calls to that tool; under
    "none" no call at all (the parser knows no tools). An exact repeat of a call already in the reply
    ends the reply (a small model otherwise repeats it until max_tokens). The engine's constraints
    (engine/constraints) make the model comply; this is the guarantee when they are off.
    """

    def __init__(self, chat: ChatRequest, parser: ReplyParser) -> None:
        self._stops = StopMatcher(chat.stop_sequences)
        self._parser = parser
        self._single_call = chat.tool_choice.disable_parallel_tool_use
        self._only_tool = chat.tool_choice.name if chat.tool_choice.type == "tool" else None
        self._calls_made: set[str] = set()
        self.matched_stop: str | None = None
        self.repeated_call = False
        self.tool_calls = 0

    @property
    def done(self) -> bool:
        """Nothing more the model says can reach the reply."""
        return (self.matched_stop is not None or self.repeated_call
                or (self._single_call and self.tool_calls > 0))

    @property
    def failed_tool_calls(self) -> tuple[str, ...]:
        return tuple(self._parser.failed_calls)

    def feed(self, text: str) -> list[ReplyEvent]:
        safe, matched = self._stops.feed(text)
        events = self._parser.feed(safe)
        if matched is not None:
            self.matched_stop = matched
        return self._after_tools(events)

    def finish(self) -> list[ReplyEvent]:
        events = [] if self.matched_stop is not None else self._parser.feed(self._stops.flush())
        return self._after_tools(events + self._parser.finish())

    def _after_tools(self, events: list[ReplyEvent]) -> list[ReplyEvent]:
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

    def stop_reason(self, stats: GenerationStats) -> tuple[str, str | None]:
        if self.tool_calls:
            return "tool_use", None
        if self.matched_stop is not None:
            return "stop_sequence", self.matched_stop
        if stats.finish_reason == "length":
            return "max_tokens", None
        return "end_turn", None


def finite(value: Any) -> Any:
    """`value` with JSON's impossible floats made possible: ±inf (a model's `1e999`) → ±max float, NaN → None."""
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


def usage_of(stats: GenerationStats) -> Usage:
    return Usage(
        input_tokens=stats.prompt_tokens - stats.cached_tokens,
        output_tokens=stats.generated_tokens,
        cache_read_input_tokens=stats.cached_tokens,
        cache_creation_input_tokens=0,
    )


class TurnSink:
    """The per-request turn pipeline the engine feeds (engine/jobs.py TextSink): model text through the stop
    sequences and the parser into reply events as they become final, then one TurnEnd. It runs on the
    engine thread, so the work that grows with the request (the stop automaton, parsing) never runs on the
    event loop; one per stream when requests are batched."""

    def __init__(self, chat: ChatRequest, prompt: RenderedPrompt, info: ModelInfo) -> None:
        self._turn = TurnFilter(chat, make_parser(chat, info, prompt))

    @property
    def done(self) -> bool:
        return self._turn.done

    def feed(self, text: str) -> list[TurnItem]:
        return list(self._turn.feed(text))

    def end(self, stats: GenerationStats) -> list[TurnItem]:
        items: list[TurnItem] = list(self._turn.finish())
        stop_reason, stop_sequence = self._turn.stop_reason(stats)
        items.append(TurnEnd(stop_reason, stop_sequence, usage_of(stats), stats, self._turn.failed_tool_calls))
        return items


def start_turn(worker: Worker, chat: ChatRequest, prompt: RenderedPrompt, max_tokens: int,
               info: ModelInfo, record: InFlight | None = None) -> JobResults:
    """Queue the turn now (QueueFull → 529 before any response starts); iterate the result for its items.
    `record` is what the status shows of it while it is queued or running (its progress moves on)."""
    progress = record.progress if record is not None else GenerationProgress()
    request = GenerationRequest(prompt, chat, max_tokens, TurnSink(chat, prompt, info), progress)
    return worker.submit_generation(request, tag=record)
