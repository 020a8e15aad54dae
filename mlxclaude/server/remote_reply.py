"""Replies from remote engines, as the routes send them: an OpenAI-compatible reply read like a local turn
(reply events, then a TurnEnd), an Anthropic-compatible one passed through as it came."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, Optional

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.usage import Usage
from mlxclaude.logs import log_event
from mlxclaude.server.accounting import Labels, log_cancelled, log_finish, record_status, stream_error
from mlxclaude.server.state import ServerState
from mlxclaude.server.turn import TurnEnd
from mlxclaude.upstream.engine import EventReply, PassthroughReply, ReplyTiming
from mlxclaude.upstream.openai_wire import ReplyEnd

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse whose body is closed however the response ends. Starlette cancels the sending task
    when the client goes away and leaves the body generator suspended; closing it runs its `finally`, which
    ends the turn (a local job, or the upstream response of a remote one)."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await close_shielded(self.body_iterator)


async def close_shielded(closable) -> None:
    """`closable.aclose()`, run to its end even inside a cancelled scope."""
    with anyio.CancelScope(shield=True), contextlib.suppress(RuntimeError):  # RuntimeError: still running
        await closable.aclose()


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    """An Anthropic event stream: ours, or a remote one passed through."""
    return EventStreamResponse(body, media_type="text/event-stream; charset=utf-8", headers=SSE_HEADERS)


class RemoteTurn:
    """A remote reply as the routes read a local turn: reply events, then a TurnEnd."""

    def __init__(self, reply: EventReply, *, streamed: bool) -> None:
        self._reply = reply
        self.streamed = streamed

    def __aiter__(self) -> "RemoteTurn":
        return self

    def take_ready(self) -> list:
        return []

    async def __anext__(self):
        item = await self._reply.__anext__()
        if isinstance(item, ReplyEnd):
            stats = remote_stats(item.usage, self._reply.timing, item.stop_reason, streamed=self.streamed)
            return TurnEnd(item.stop_reason, item.stop_sequence, item.usage, stats)
        return item

    async def aclose(self) -> None:
        await self._reply.aclose()


def remote_stats(usage: Usage, timing: ReplyTiming, stop_reason: Optional[str], *,
                 streamed: bool) -> GenerationStats:
    """A remote reply's figures; a reply that came whole has a time to its end but no decode speed."""
    cached = usage.cache_read_input_tokens
    return GenerationStats(prompt_tokens=usage.input_tokens + cached + usage.cache_creation_input_tokens,
                           cached_tokens=cached, generated_tokens=usage.output_tokens,
                           prefill_seconds=timing.ttft_s, ttft_seconds=timing.ttft_s,
                           decode_seconds=timing.decode_s if streamed else 0.0,
                           finish_reason="length" if stop_reason == "max_tokens" else "stop")


async def pass_through(request: Request, state: ServerState, chat: ChatRequest, labels: Labels,
                       reply: PassthroughReply):
    """An Anthropic-compatible backend's reply, as it came; logged and counted from its usage."""
    request_id = request.state.request_id

    def finished() -> None:
        stats = remote_stats(reply.usage, reply.timing, reply.stop_reason, streamed=reply.body is None)
        log_finish(state, request_id, chat, labels, TurnEnd(reply.stop_reason or "end_turn", None, reply.usage, stats))

    if reply.body is not None:
        finished()
        return JSONResponse(reply.body)

    async def body() -> AsyncIterator[bytes]:
        ended = False
        try:
            async for chunk in reply.chunks():
                yield chunk
            ended = True
        except ApiError as exc:
            ended = True
            yield stream_error(state, request_id, labels, exc)
            return
        finally:
            await close_shielded(reply)
            if not ended:
                log_cancelled(state, request_id, chat, labels)
        if reply.error is not None:
            log_event("request_error", level="error", request_id=request_id, error=reply.error.message,
                      backend=labels.backend)
            record_status(state, labels, "error")
            return
        finished()

    return sse_response(body())
