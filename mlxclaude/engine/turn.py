"""One assistant turn: prompt -> engine text -> stop sequences -> reply parser -> reply events.

The engine runs it on its own thread (TurnSink), so the work that grows with the reply never runs on the
server's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from mlxclaude.engine.backend import GenerationProgress, GenerationStats, ModelInfo, RenderedPrompt
from mlxclaude.engine.jobs import GenerationRequest
from mlxclaude.engine.worker import JobResults, Worker
from mlxclaude.parsing.events import ReplyEvent
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.stops import StopMatcher
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.reply_rules import ReplyRules
from mlxclaude.protocol.usage import Usage


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
    """Applies stop sequences, the parser and the reply rules (protocol/reply_rules.py) to the raw text, and
    decides the stop reason. The engine's constraints (engine/constraints) make the model comply with
    tool_choice; the rules are the guarantee when they are off."""

    def __init__(self, chat: ChatRequest, parser: ReplyParser) -> None:
        self._stops = StopMatcher(chat.stop_sequences)
        self._parser = parser
        self._rules = ReplyRules(chat)
        self.matched_stop: str | None = None

    @property
    def done(self) -> bool:
        """Nothing more the model says can reach the reply."""
        return self.matched_stop is not None or self._rules.done

    @property
    def tool_calls(self) -> int:
        return self._rules.tool_calls

    @property
    def failed_tool_calls(self) -> tuple[str, ...]:
        return tuple(self._parser.failed_calls)

    def feed(self, text: str) -> list[ReplyEvent]:
        safe, matched = self._stops.feed(text)
        events = self._parser.feed(safe)
        if matched is not None:
            self.matched_stop = matched
        return self._rules.apply(events)

    def finish(self) -> list[ReplyEvent]:
        events = [] if self.matched_stop is not None else self._parser.feed(self._stops.flush())
        return self._rules.apply(events + self._parser.finish())

    def stop_reason(self, stats: GenerationStats) -> tuple[str, str | None]:
        if self.tool_calls:
            return "tool_use", None
        if self.matched_stop is not None:
            return "stop_sequence", self.matched_stop
        if stats.finish_reason == "length":
            return "max_tokens", None
        return "end_turn", None


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

    def feed(self, text: str) -> list[ReplyEvent]:
        return self._turn.feed(text)

    def end(self, stats: GenerationStats) -> list[TurnItem]:
        items: list[TurnItem] = list(self._turn.finish())
        stop_reason, stop_sequence = self._turn.stop_reason(stats)
        items.append(TurnEnd(stop_reason, stop_sequence, usage_of(stats), stats, self._turn.failed_tool_calls))
        return items


def start_turn(worker: Worker, chat: ChatRequest, prompt: RenderedPrompt, max_tokens: int,
               info: ModelInfo, progress: GenerationProgress | None = None, tag: Any = None) -> JobResults:
    """Queue the turn now (QueueFull → 529 before any response starts); iterate the result for its items.
    `progress` moves on as the engine works; `tag` is what the worker lists while the turn is queued or
    running (the server's in-flight record)."""
    request = GenerationRequest(prompt, chat, max_tokens, TurnSink(chat, prompt, info), progress or GenerationProgress())
    return worker.submit_generation(request, tag=tag)
