"""A turn whose reply comes as reply events — a local model's, or an OpenAI-compatible engine's — encoded
here as the Anthropic stream or message: one encoding for both."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Protocol

import anyio

from mlxclaude.engine.turn import TurnEnd, TurnItem
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.response import MessageBuilder
from mlxclaude.protocol.stream import StreamEncoder, encode_sse
from mlxclaude.protocol.usage import Usage
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.inflight import InFlight
from mlxclaude.server.state import ServerState, new_message_id


class TurnItems(Protocol):
    """Reply events, then one TurnEnd (a local job's results, a remote reply's events)."""

    # whether `interrupt` works: the items come through a queue of their own, so the stream can wait on it alone
    interruptible: bool

    def __aiter__(self) -> "TurnItems": ...

    async def __anext__(self) -> TurnItem: ...

    def take_ready(self) -> list[TurnItem]:
        """What has already arrived, without waiting."""
        ...

    def interrupt(self, marker: object) -> None:
        """Have `__anext__` return `marker` once what has already arrived is out (only when `interruptible`)."""
        ...

    async def aclose(self) -> None: ...


_PING, _CLOSING = object(), object()  # what the stream's timer and the server's shutdown hand the waiting stream


class EventTurn:
    def __init__(self, items: TurnItems, *, state: ServerState, account: RequestAccount, record: InFlight,
                 start_usage: Usage) -> None:
        self._items = items
        self._state = state
        self._account = account
        self.record = record
        self._start_usage = start_usage
        self._pending: asyncio.Future | None = None  # a read of items that are not interruptible, across pings
        self._closing: asyncio.Future | None = None

    def _omit_thinking(self) -> bool:
        return self._account.chat.omit_thinking

    async def stream(self) -> AsyncIterator[bytes]:
        account, state = self._account, self._state
        encoder = StreamEncoder(new_message_id(), account.labels.model, omit_thinking=self._omit_thinking())
        for name, data in encoder.start(self._start_usage):
            yield encode_sse(name, data)
        self._closing = asyncio.ensure_future(state.closing.wait())
        if self._items.interruptible:
            self._closing.add_done_callback(lambda _: self._items.interrupt(_CLOSING))
        ended = False  # with a TurnEnd or an error event; otherwise the client went away
        try:
            while True:
                try:
                    item = await self._next()
                except StopAsyncIteration:
                    raise ApiError.api_error("generation ended without a result") from None
                chunks: list[bytes] = []
                for item in [item, *self._items.take_ready()]:  # behind the engine: one write for what is there
                    if item is _PING:
                        if not chunks:
                            chunks.append(encode_sse(*encoder.ping()))
                        continue
                    if item is _CLOSING or state.closing.is_set():
                        if chunks:
                            yield b"".join(chunks)
                        raise ApiError.overloaded("the server is shutting down; retry the request")
                    if isinstance(item, TurnEnd):
                        chunks += [encode_sse(name, data) for name, data in
                                   encoder.finish(item.stop_reason, item.stop_sequence, item.usage)]
                        ended = True
                        yield b"".join(chunks)
                        account.finished(item)
                        return
                    chunks += [encode_sse(name, data) for name, data in encoder.feed(item)]
                if chunks:
                    yield b"".join(chunks)
        except ApiError as exc:
            ended = True
            yield account.stream_failed(exc)
        except Exception as exc:  # mid-stream failure: an error event, then the stream ends
            ended = True
            yield account.stream_crashed(exc)
        finally:
            with anyio.CancelScope(shield=True):  # the client may be gone: the turn still ends, here and upstream
                for future in (self._pending, self._closing):
                    if future is not None and not future.done():
                        future.cancel()
                        with contextlib.suppress(BaseException):
                            await future
                await self._items.aclose()
            if not ended:
                account.cancelled()

    async def _next(self) -> Any:
        """The next item, or _PING after `ping_interval` without one, or _CLOSING once the server shuts down.

        Items with a queue of their own are awaited directly, one hand-off per delivery: a timer puts the ping
        in their queue, the shutdown its marker. Others (a remote reply read off its connection) are read by a
        task of their own that a ping must not cancel, raced against the shutdown and the ping's timeout."""
        interval = self._state.settings.ping_interval
        if self._items.interruptible:
            timer = asyncio.get_running_loop().call_later(interval, self._items.interrupt, _PING)
            try:
                return await self._items.__anext__()
            finally:
                timer.cancel()
        pending, closing = self._pending or asyncio.ensure_future(self._items.__anext__()), self._closing
        assert closing is not None
        await asyncio.wait({pending, closing}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        if not pending.done():
            self._pending = pending
            return _CLOSING if closing.done() else _PING
        self._pending = None
        return pending.result()

    async def message(self) -> dict[str, Any]:
        builder = MessageBuilder(new_message_id(), self._account.labels.model, omit_thinking=self._omit_thinking())
        async for item in self._items:
            if isinstance(item, TurnEnd):
                self._account.finished(item)
                return builder.build(item.stop_reason, item.stop_sequence, item.usage)
            builder.feed(item)
        raise ApiError.api_error("generation ended without a result")

    async def aclose(self) -> None:
        await self._items.aclose()
