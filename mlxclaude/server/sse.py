"""Answering with an Anthropic event stream: ours, or a remote one passed through."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import anyio
from fastapi.responses import StreamingResponse

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse whose body is closed however the response ends. Starlette cancels the sending task
    when the client goes away and leaves the body generator suspended; closing it runs its `finally`, which
    ends the turn (a local job, or the upstream response of a remote one)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await close_shielded(self.body_iterator)


async def close_shielded(closable: Any) -> None:
    """`closable.aclose()`, run to its end even inside a cancelled scope."""
    with anyio.CancelScope(shield=True), contextlib.suppress(RuntimeError):  # RuntimeError: still running
        await closable.aclose()


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return EventStreamResponse(body, media_type="text/event-stream; charset=utf-8", headers=SSE_HEADERS)
