"""Remote engines as a route's targets. An OpenAI-compatible or Azure engine's reply comes as reply events,
which go through the same reply rules and the same encoding as a local model's; an Anthropic-compatible
engine's reply is passed through as it came, read on the way for its usage and its end."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, AsyncIterator, Callable, Optional

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.turn import TurnEnd, TurnItem
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.reply_rules import ReplyRules
from mlxclaude.protocol.usage import Usage
from mlxclaude.routing.config import BackendSpec
from mlxclaude.routing.health import BackendHealth
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.event_turn import EventTurn, TurnItems
from mlxclaude.server.inflight import InFlight
from mlxclaude.server.sse import close_shielded
from mlxclaude.server.state import ServerState
from mlxclaude.server.target import Turn, TurnRequest
from mlxclaude.server.web_search_turn import offer_search, with_searches
from mlxclaude.upstream.openai_wire import ReplyEnd
from mlxclaude.upstream.remote_engine import EventReply, PassthroughReply, RemoteEngine, ReplyTiming


class RemoteTarget:
    """What remote targets share: the engine, its health, the turns it holds."""

    def __init__(self, spec: BackendSpec, engine: RemoteEngine, health: BackendHealth, state: ServerState) -> None:
        self.spec = spec
        self.engine = engine
        self.health = health
        self.state = state
        self._open: dict[int, InFlight] = {}

    def _new_record(self, request: TurnRequest) -> InFlight:
        chat = request.chat
        return InFlight(request_id=request.request_id, kind=chat.kind, session=chat.session_id, prompt_tokens=0,
                        max_tokens=chat.max_tokens, stream=chat.stream, backend=self.spec.name, remote=True)

    def _record(self, request: TurnRequest) -> InFlight:
        """A new in-flight record, listed by in_flight() until its turn closes."""
        record = self._new_record(request)
        self._open[id(record)] = record
        return record

    def _forget(self, record: InFlight) -> None:
        self._open.pop(id(record), None)

    async def count_tokens(self, request: TurnRequest) -> Optional[int]:
        return await self.engine.count_tokens(request.document, request.headers)

    def facts(self) -> dict[str, Any]:
        spec = self.spec
        facts = {"name": spec.name, "kind": spec.kind, "model": spec.model or spec.deployment, "url": spec.url,
                 "in_flight": len(self._open), **self.health.facts(spec.name)}
        return {key: value for key, value in facts.items() if value is not None or key == "model"}

    def up(self) -> bool:
        return not self.health.cooling(self.spec.name)

    def sees_images(self) -> bool:
        return True  # the translation carries them; the engine says if it cannot

    def in_flight(self) -> list[tuple[InFlight, bool]]:
        return [(record, True) for record in list(self._open.values())]

    async def close(self) -> None:
        await self.engine.aclose()

    async def open(self, request: TurnRequest, account: RequestAccount) -> Turn:
        chat = request.chat
        reply = await self.engine.open(chat, request.document, request.headers, stream=chat.stream)
        account.started(max_tokens=chat.max_tokens)
        record = self._record(request)
        return self._turn(reply, request, account, record, on_close=lambda: self._forget(record))

    def _turn(self, reply: Any, request: TurnRequest, account: RequestAccount, record: InFlight, *,
              on_close) -> Turn:
        raise NotImplementedError


class EventEngineTarget(RemoteTarget):
    """OpenAI-compatible engines and Azure OpenAI."""

    async def open(self, request: TurnRequest, account: RequestAccount) -> Turn:
        request.chat.require_readable()  # the engine reads documents as the text they were turned into
        chat, not_configured = offer_search(request.chat, self.state, account, self._new_record(request))
        if not_configured is not None:
            return not_configured
        return await super().open(replace(request, chat=chat), account)

    def _turn(self, reply: Any, request: TurnRequest, account: RequestAccount, record: InFlight, *,
              on_close) -> Turn:
        assert isinstance(reply, EventReply)
        chat = request.chat

        async def reopen(next_chat: ChatRequest) -> TurnItems:  # a web search's next round, in the same turn
            again = await self.engine.open(next_chat, request.document, request.headers, stream=chat.stream)
            assert isinstance(again, EventReply)
            return RemoteEvents(again, ReplyRules(next_chat), record, streamed=chat.stream)

        first = RemoteEvents(reply, ReplyRules(chat), record, streamed=chat.stream)
        items = ClosingItems(with_searches(chat, first, reopen, self.state, request.request_id), on_close)
        return EventTurn(items, state=self.state, account=account, record=record, start_usage=Usage())


class RemoteEvents:
    """A remote reply as turn items: its events through the reply rules, then a TurnEnd with its figures."""

    interruptible = False  # read off the connection: the stream reads it in a task of its own

    def __init__(self, reply: EventReply, rules: ReplyRules, record: InFlight, *, streamed: bool) -> None:
        self._reply = reply
        self._rules = rules
        self._record = record
        self._streamed = streamed
        self._ended = False

    def __aiter__(self) -> "RemoteEvents":
        return self

    def take_ready(self) -> list[TurnItem]:
        return []

    def interrupt(self, marker: object) -> None:
        raise NotImplementedError("a remote reply is not interruptible")

    async def __anext__(self) -> TurnItem:
        while True:
            if self._ended:
                raise StopAsyncIteration
            if self._rules.done:  # a repeated call or the one call allowed: nothing more can reach the reply
                await self._reply.aclose()
                return self._end(ReplyEnd("tool_use", None, Usage()))
            item = await self._reply.__anext__()
            progress = self._record.progress
            if progress.phase != "decode":
                progress.begin_decode()
            if isinstance(item, ReplyEnd):
                return self._end(item)
            kept = self._rules.apply([item])
            if kept:
                progress.generated_tokens += 1
                return kept[0]

    def _end(self, end: ReplyEnd) -> TurnEnd:
        self._ended = True
        stop_reason = end.stop_reason
        if self._rules.tool_calls:
            stop_reason = "tool_use"
        elif stop_reason == "tool_use":  # every call was dropped by the rules
            stop_reason = "end_turn"
        stats = remote_stats(end.usage, self._reply.timing, stop_reason, streamed=self._streamed)
        return TurnEnd(stop_reason, end.stop_sequence if stop_reason == "stop_sequence" else None, end.usage, stats)

    async def aclose(self) -> None:
        await self._reply.aclose()


class ClosingItems:
    """A turn's items that call `on_close` once, when the whole turn closes (not as each search round ends)."""

    def __init__(self, items: TurnItems, on_close: Callable[[], None]) -> None:
        self._items = items
        self._on_close = on_close
        self.interruptible = items.interruptible

    def interrupt(self, marker: object) -> None:
        self._items.interrupt(marker)

    def __aiter__(self) -> "ClosingItems":
        return self

    async def __anext__(self) -> TurnItem:
        return await self._items.__anext__()

    def take_ready(self) -> list[TurnItem]:
        return self._items.take_ready()

    async def aclose(self) -> None:
        try:
            await self._items.aclose()
        finally:
            self._on_close()


class PassthroughTarget(RemoteTarget):
    """Anthropic-compatible engines (vLLM's or llama.cpp's /v1/messages, or Anthropic itself)."""

    def _turn(self, reply: Any, request: TurnRequest, account: RequestAccount, record: InFlight, *,
              on_close) -> Turn:
        assert isinstance(reply, PassthroughReply)
        return PassthroughTurn(reply, account, record, on_close=on_close)


class PassthroughTurn:
    def __init__(self, reply: PassthroughReply, account: RequestAccount, record: InFlight, *, on_close) -> None:
        self._reply = reply
        self._account = account
        self.record = record
        self._on_close = on_close

    def _end(self) -> TurnEnd:
        reply = self._reply
        stats = remote_stats(reply.usage, reply.timing, reply.stop_reason, streamed=reply.body is None)
        return TurnEnd(reply.stop_reason or "end_turn", None, reply.usage, stats)

    async def stream(self) -> AsyncIterator[bytes]:
        account, reply = self._account, self._reply
        ended = False
        try:
            async for chunk in reply.chunks():
                if self.record.progress.phase != "decode":
                    self.record.progress.begin_decode()
                yield chunk
            ended = True
        except ApiError as exc:
            ended = True
            yield account.stream_failed(exc)
            return
        finally:
            await close_shielded(self)
            if not ended:
                account.cancelled()
        if reply.error is not None:
            account.failed(reply.error)  # the backend's own error event went out as it came
        else:
            account.finished(self._end())

    async def message(self) -> dict[str, Any]:
        assert self._reply.body is not None
        self._account.finished(self._end())
        return self._reply.body

    async def aclose(self) -> None:
        try:
            await self._reply.aclose()
        finally:
            self._on_close()


def remote_stats(usage: Usage, timing: ReplyTiming, stop_reason: Optional[str], *,
                 streamed: bool) -> GenerationStats:
    """A remote reply's figures; a reply that came whole has a time to its end but no decode speed."""
    cached = usage.cache_read_input_tokens
    return GenerationStats(prompt_tokens=usage.input_tokens + cached + usage.cache_creation_input_tokens,
                           cached_tokens=cached, generated_tokens=usage.output_tokens,
                           prefill_seconds=timing.ttft_s, ttft_seconds=timing.ttft_s,
                           decode_seconds=timing.decode_s if streamed else 0.0,
                           finish_reason="length" if stop_reason == "max_tokens" else "stop")


def remote_target(spec: BackendSpec, engine: RemoteEngine, health: BackendHealth, state: ServerState) -> RemoteTarget:
    """The target for a remote backend's kind: its reply's events re-encoded, or its reply passed through."""
    kind = PassthroughTarget if spec.kind == "anthropic" else EventEngineTarget
    return kind(spec, engine, health, state)
