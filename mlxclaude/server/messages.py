"""POST /v1/messages (streaming and not) and POST /v1/messages/count_tokens."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import AsyncIterator, Mapping

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.engine.render import RenderError
from mlxclaude.engine.worker import JobResults
from mlxclaude.logs import log_event, log_internal_error
from mlxclaude.protocol import limits
from mlxclaude.protocol.body import decode_json_body
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.kinds import classify, session_id_of
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.response import MessageBuilder
from mlxclaude.protocol.stream import StreamEncoder, encode_sse, error_event
from mlxclaude.protocol.usage import Usage
from mlxclaude.protocol.wire import MessageCreateParams, parse_count_tokens_params, parse_create_params
from mlxclaude.server.inflight import InFlight
from mlxclaude.server.state import ServerState, new_message_id
from mlxclaude.server.turn import TurnEnd, output_budget, start_turn

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def prepare_create(raw: bytes, headers: Mapping[str, str],
                   context_length: int) -> tuple[MessageCreateParams, ChatRequest]:
    """Body bytes → validated params and the model-side request (on a worker thread: it scales with the body).
    A request far too long for the context is refused here, before minutes of tokenizing."""
    params = parse_create_params(decode_json_body(raw))
    metadata_user = params.metadata.user_id if params.metadata else None
    chat = to_chat_request(params, session_id=session_id_of(headers, metadata_user))
    size = chat.text_size()
    if size > context_length * limits.MAX_CHARS_PER_TOKEN:
        raise ApiError.prompt_too_long(size // limits.TYPICAL_CHARS_PER_TOKEN, context_length)
    return params, replace(chat, kind=classify(chat))


def prepare_count(raw: bytes, headers: Mapping[str, str]) -> ChatRequest:
    params = parse_count_tokens_params(decode_json_body(raw))
    return to_chat_request(params, session_id=session_id_of(headers), kind="count")


async def render_prompt(state: ServerState, chat: ChatRequest) -> RenderedPrompt:
    info = state.ready_info()
    if chat.has_images and not info.supports_vision:
        raise ApiError.images_unsupported(info.name)
    backend = state.worker.backend
    try:
        return await asyncio.to_thread(backend.render, chat)
    except RenderError as exc:
        raise ApiError.invalid_request(str(exc)) from None


async def count_tokens(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.mlxclaude
    chat = await asyncio.to_thread(prepare_count, await request.body(), request.headers)
    prompt = await render_prompt(state, chat)
    log_event("count_tokens", request_id=request.state.request_id, session=chat.session_id,
              request_kind="count", prompt_tokens=len(prompt.tokens))
    return JSONResponse({"input_tokens": len(prompt.tokens)})


async def create_message(request: Request):
    state: ServerState = request.app.state.mlxclaude
    info = state.ready_info()
    params, chat = await asyncio.to_thread(prepare_create, await request.body(), request.headers,
                                           info.context_length)
    prompt = await render_prompt(state, chat)
    settings = state.settings
    max_tokens = output_budget(len(prompt.tokens), chat.max_tokens, info,
                               cap=settings.max_output_tokens, policy=settings.max_tokens_policy)
    request_id = request.state.request_id
    record = InFlight(request_id=request_id, kind=chat.kind, session=chat.session_id,
                      prompt_tokens=len(prompt.tokens), max_tokens=max_tokens, stream=chat.stream)
    turn = start_turn(state.worker, chat, prompt, max_tokens, info, record)  # queued now: a full queue is a 529
    log_event("request_start", request_id=request_id, session=chat.session_id, request_kind=chat.kind,
              model=params.model, stream=chat.stream, prompt_tokens=len(prompt.tokens), max_tokens=max_tokens,
              tools=len(chat.tools), queued=state.worker.pending - 1)
    if chat.stream:
        body = stream_events(state, request_id, chat, params.model, prompt, turn)
        return StreamingResponse(body, media_type="text/event-stream; charset=utf-8", headers=SSE_HEADERS)
    return await complete_message(request, request_id, chat, params.model, turn)


def log_finish(request_id: str, chat: ChatRequest, end: TurnEnd) -> None:
    stats = end.stats
    for raw in end.failed_tool_calls:
        log_event("tool_call_unparsed", level="warning", request_id=request_id, session=chat.session_id,
                  raw=raw[:2000], note="returned to the client as text")
    fields = dict(
        request_id=request_id, session=chat.session_id, request_kind=chat.kind,
        prompt_tokens=stats.prompt_tokens, cached_tokens=stats.cached_tokens,
        new_tokens=stats.prompt_tokens - stats.cached_tokens, output_tokens=stats.generated_tokens,
        ttft_s=round(stats.ttft_seconds, 3), prefill_tps=round(stats.prefill_tps, 1),
        decode_tps=round(stats.decode_tps, 1), peak_memory_gb=round(stats.peak_memory_gb, 3),
        cache=stats.cache_note or None, stop_reason=end.stop_reason, finish=stats.finish_reason,
    )
    # the engine's extra facts (prompt cache: reused_tokens, cache_entry, diverged_at/_message/_role, miss_reason)
    fields.update({key: value for key, value in stats.extra.items() if key not in fields and key not in ("kind", "level")})
    log_event("request_finish", kind="perf", **fields)


async def stream_events(state: ServerState, request_id: str, chat: ChatRequest, model: str,
                        prompt: RenderedPrompt, turn: JobResults) -> AsyncIterator[bytes]:
    encoder = StreamEncoder(new_message_id(), model)
    for name, data in encoder.start(Usage(input_tokens=len(prompt.tokens))):
        yield encode_sse(name, data)
    pending: asyncio.Future | None = None
    closing = asyncio.ensure_future(state.closing.wait())
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(turn.__anext__())
            await asyncio.wait({pending, closing}, timeout=state.settings.ping_interval,
                               return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                if closing.done():
                    raise ApiError.overloaded("the server is shutting down; retry the request")
                yield encode_sse(*encoder.ping())
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            chunks: list[bytes] = []
            for item in [item, *turn.take_ready()]:  # behind the engine: what is there goes out in one write
                if isinstance(item, TurnEnd):
                    chunks += [encode_sse(name, data)
                               for name, data in encoder.finish(item.stop_reason, item.stop_sequence, item.usage)]
                    yield b"".join(chunks)
                    log_finish(request_id, chat, item)
                    return
                chunks += [encode_sse(name, data) for name, data in encoder.feed(item)]
            if chunks:
                yield b"".join(chunks)
    except ApiError as exc:
        log_event("request_error", level="error", request_id=request_id, error=exc.message)
        yield encode_sse(*error_event(exc.error_type, exc.message))
    except Exception as exc:  # mid-stream failure: an error event, then the stream ends
        log_internal_error("request_error", exc, request_id=request_id)
        yield encode_sse(*error_event("api_error", f"generation failed: {exc}"))
    finally:
        for future in (pending, closing):
            if future is not None and not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    await future
        await turn.aclose()


async def complete_message(request: Request, request_id: str, chat: ChatRequest, model: str,
                           turn: JobResults) -> JSONResponse:
    builder = MessageBuilder(new_message_id(), model)

    async def collect() -> TurnEnd:
        async for item in turn:
            if isinstance(item, TurnEnd):
                return item
            builder.feed(item)
        raise ApiError.api_error("generation ended without a result")

    task = asyncio.ensure_future(collect())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                log_event("request_cancelled", request_id=request_id, session=chat.session_id)
                return JSONResponse(status_code=499, content={})
    finally:
        await turn.aclose()
    end = task.result()
    log_finish(request_id, chat, end)
    return JSONResponse(builder.build(end.stop_reason, end.stop_sequence, end.usage))
