"""What every remote engine gives the server: a reply that has started (status 2xx, nothing sent to the
client yet), or a TargetFailure saying whether the next backend may be tried.

Two reply shapes: EventReply (OpenAI-compatible engines: their chunks become our reply events, which the
server encodes like the local engine's) and PassthroughReply (Anthropic-compatible engines: their bytes
go out as they came, read only for the usage).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Optional, Protocol, Union

from mlxclaude.parsing.events import ReplyEvent
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.usage import Usage
from mlxclaude.redaction import redact, redact_bytes, redact_value
from mlxclaude.routing.config import BackendSpec
from mlxclaude.upstream.openai_wire import ReplyEnd
from mlxclaude.upstream.sse import SSEEvent, SSEEvents, SSELineTooLong, broke_off, line_too_long

# statuses worth another backend: the request was fine, this backend could not serve it now
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass
class ReplyTiming:
    """When the reply's first and last pieces came (time.monotonic), for TTFT and decode tok/s."""
    started: float = field(default_factory=time.monotonic)
    first: Optional[float] = None
    last: Optional[float] = None

    def arrived(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now

    @property
    def ttft_s(self) -> float:
        return (self.first or time.monotonic()) - self.started

    @property
    def decode_s(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last is not None else 0.0


class EventReply:
    """Reply events, then one ReplyEnd; `aclose()` ends the upstream response early."""

    def __init__(self, items: AsyncIterator[Union[ReplyEvent, ReplyEnd]], timing: ReplyTiming, close) -> None:
        self._items = items
        self.timing = timing
        self._close = close

    def __aiter__(self) -> "EventReply":
        return self

    async def __anext__(self) -> Union[ReplyEvent, ReplyEnd]:
        item = await self._items.__anext__()
        self.timing.arrived()
        return item

    async def aclose(self) -> None:
        try:
            with contextlib.suppress(RuntimeError):  # a generator still running closes with its response
                await self._items.aclose()  # type: ignore[attr-defined]
        finally:
            await self._close()


class PassthroughReply:
    """An Anthropic-compatible reply as it came: `body` (not streamed) or `chunks()` (SSE bytes, one whole event
    at a time). `usage` is known once the reply is read (the SSE's message_start and message_delta carry it).
    A stream that ends before its `message_stop` (or an `error` event) raises the ApiError that ends the turn,
    so half an answer never reads as a whole one."""

    def __init__(self, *, body: Optional[dict] = None, chunks: Optional[AsyncIterator[bytes]] = None,
                 timing: ReplyTiming, close, backend: str = "upstream") -> None:
        self.body = redact_value(body)
        self._chunks = chunks
        self.timing = timing
        self._close = close
        self.backend = backend
        self.usage = Usage()
        self.stop_reason: Optional[str] = None
        self.ended = False  # message_stop or an error event came
        self.error: Optional[ApiError] = None  # the error event the backend ended its stream with
        self._events = SSEEvents()
        if body is not None:
            self._read_message(body)

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self._chunks is not None
        try:
            async for chunk in self._chunks:
                self.timing.arrived()
                events = self._events.feed(chunk)
                for event in events:
                    self._read_event(event)
                if events:
                    yield redact_bytes(b"".join(event.raw for event in events))
                if self.ended:
                    return
        except SSELineTooLong as exc:
            raise line_too_long(self.backend, exc) from None
        if not self.ended:
            raise broke_off(self.backend, "the stream ended before message_stop")

    async def aclose(self) -> None:
        try:
            if self._chunks is not None:
                with contextlib.suppress(RuntimeError):
                    await self._chunks.aclose()  # type: ignore[attr-defined]
        finally:
            await self._close()

    def _read_event(self, event: SSEEvent) -> None:
        try:
            data = json.loads(event.data) if event.data else None
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type") or event.name
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self._read_message(data["message"])
        elif kind == "message_delta":
            self._read_usage(data.get("usage"))
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
        elif kind == "message_stop":
            self.ended = True
        elif kind == "error":
            self.ended = True
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            self.error = ApiError(500, str(error.get("type") or "api_error"),
                                  redact(str(error.get("message") or "the backend's stream ended with an error")))

    def _read_message(self, message: dict) -> None:
        self._read_usage(message.get("usage"))
        if message.get("stop_reason"):
            self.stop_reason = message["stop_reason"]

    def _read_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        known = {name: value for name, value in usage.items()
                 if name in Usage.__dataclass_fields__ and isinstance(value, int)}
        current = self.usage.__dict__ | known
        self.usage = Usage(**current)


RemoteReply = Union[EventReply, PassthroughReply]


class RemoteEngine(Protocol):
    spec: BackendSpec

    async def open(self, chat: ChatRequest, document: dict, headers: dict[str, str], *, stream: bool) -> RemoteReply:
        """Send the request — `chat` typed, `document` as the client sent it (an Anthropic-compatible engine
        passes that on) — and return once the reply has started, or raise TargetFailure."""
        ...

    async def count_tokens(self, request: dict, headers: dict[str, str]) -> Optional[int]:
        """The backend's own count, where it has one (None: the server estimates)."""
        ...

    async def aclose(self) -> None:
        ...
