"""An Anthropic event stream as another API's events, for the OpenAI front doors (server/chat_completions.py,
server/responses.py): each turn answers in Anthropic's shape, and its stream is re-read event by event."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from mlxclaude.protocol.chat_completions_out import error_body
from mlxclaude.server.sse import close_shielded
from mlxclaude.upstream.sse import SSEEvents


def data_line(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def translated(source: AsyncIterator[bytes], feed, *, done: bytes = b"", encode=data_line,
                     on_error=error_body, on_end=None) -> AsyncIterator[bytes]:
    """An Anthropic event stream as another API's events: `feed(name, data)` turns each event into payloads
    (encoded by `encode`); pings stay keep-alive comments; an error event becomes `on_error(type, message)`, the
    API's error payload, and ends the stream (without `done`); `on_end()` runs once a stream ended well."""
    events = SSEEvents()
    failed = False
    try:
        async for chunk in source:
            out: list[bytes] = []
            for event in events.feed(chunk):
                if event.name == "ping" or not event.data:
                    out.append(b": ping\n\n")
                    continue
                data = json.loads(event.data)
                if event.name == "error":
                    error = data.get("error") or {}
                    out.append(encode(on_error(error.get("type", "api_error"), error.get("message", ""))))
                    failed = True
                    continue
                out.extend(encode(payload) for payload in feed(event.name, data))
            if out:
                yield b"".join(out)
        if not failed:
            if on_end is not None:
                on_end()
            if done:
                yield done
    finally:
        await close_shielded(source)


def event_line(payload: dict[str, Any]) -> bytes:
    """A named event (the Responses API's), its name the payload's `type`."""
    return f"event: {payload['type']}\n".encode() + data_line(payload)
