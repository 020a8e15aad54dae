"""POST /v1/messages (streaming and not) and POST /v1/messages/count_tokens."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import AsyncIterator, Awaitable, Mapping, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from mlxclaude.engine.backend import ModelInfo, RenderedPrompt
from mlxclaude.engine.render import RenderError
from mlxclaude.engine.worker import JobResults, QueueFull, Worker
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
from mlxclaude.server.accounting import (
    Labels, log_cancelled, log_finish, record_error, record_status, stream_error,
)
from mlxclaude.server.backends import LocalModel, RemoteBackend, Runtime
from mlxclaude.server.inflight import InFlight
from mlxclaude.server.state import ServerState, new_message_id
from mlxclaude.server.turn import TurnEnd, output_budget, start_turn
from mlxclaude.server.remote_reply import RemoteTurn, pass_through, sse_response
from mlxclaude.upstream.engine import PassthroughReply, UpstreamFailure

T = TypeVar("T")



def prepare_create(raw: bytes, headers: Mapping[str, str]) -> tuple[dict, MessageCreateParams, ChatRequest]:
    """Body bytes → the request as sent (for a remote backend), validated params and the model-side request
    (on a worker thread: it scales with the body)."""
    document = decode_json_body(raw)
    params = parse_create_params(document)
    metadata_user = params.metadata.user_id if params.metadata else None
    chat = to_chat_request(params, session_id=session_id_of(headers, metadata_user))
    return document, params, replace(chat, kind=classify(chat))


def check_size(chat: ChatRequest, context_length: int) -> None:
    """A request far too long for a local model's context is refused before minutes of tokenizing."""
    size = chat.text_size()
    if size > context_length * limits.MAX_CHARS_PER_TOKEN:
        raise ApiError.prompt_too_long(size // limits.TYPICAL_CHARS_PER_TOKEN, context_length)


def prepare_count(raw: bytes, headers: Mapping[str, str]) -> tuple[dict, ChatRequest]:
    document = decode_json_body(raw)
    params = parse_count_tokens_params(document)
    return document, to_chat_request(params, session_id=session_id_of(headers), kind="count")


async def render_prompt(worker: Worker, info: ModelInfo, chat: ChatRequest) -> RenderedPrompt:
    if chat.has_images and not info.supports_vision:
        raise ApiError.images_unsupported(info.name)
    try:
        return await asyncio.to_thread(worker.backend.render, chat)
    except RenderError as exc:
        raise ApiError.invalid_request(str(exc)) from None


async def count_tokens(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.mlxclaude
    document, chat = await asyncio.to_thread(prepare_count, await request.body(), request.headers)
    route, chain = state.backends.plan(chat.model)
    counted = await count_on(state, chain, document, chat, dict(request.headers))
    log_event("count_tokens", request_id=request.state.request_id, session=chat.session_id,
              request_kind="count", prompt_tokens=counted, backend=chain[0].spec.name, route=route.pattern)
    return JSONResponse({"input_tokens": counted})


async def count_on(state: ServerState, chain: list[Runtime], document: dict, chat: ChatRequest,
                   headers: dict[str, str]) -> int:
    """The routed backend's count: a local model's tokenizer, an Anthropic-compatible backend's own count;
    otherwise the default model's tokenizer (when loaded) or about four characters a token."""
    first = chain[0]
    if isinstance(first, RemoteBackend):
        counted = await first.engine.count_tokens(document, headers)
        if counted is not None:
            return counted
        local = state.backends.local.worker
        if local is None or local.state != "ready" or local.backend is None:
            return max(1, chat.text_size() // limits.TYPICAL_CHARS_PER_TOKEN)
        worker, info = local, local.backend.info
    else:
        try:
            worker, info = await first.ready()
        except UpstreamFailure as failure:
            raise failure.error from None
    return len((await render_prompt(worker, info, chat)).tokens)


async def create_message(request: Request):
    state: ServerState = request.app.state.mlxclaude
    document, params, chat = await asyncio.to_thread(prepare_create, await request.body(), request.headers)
    route, chain = state.backends.plan(params.model)
    request_id = request.state.request_id
    for position, runtime in enumerate(chain):
        name = runtime.spec.name
        labels = Labels(backend=name, route=route.pattern, model=params.model, kind=chat.kind)
        try:
            if isinstance(runtime, LocalModel):
                return await create_local(request, state, runtime, params.model, chat, labels)
            response = await create_remote(request, state, runtime, document, params.model, chat, labels)
            state.backends.health.succeeded(name)
            return response
        except UpstreamFailure as failure:
            if isinstance(runtime, RemoteBackend) and failure.retryable:  # the backend's fault, not the request's
                state.backends.health.failed(name, failure.error.message)
            following = chain[position + 1] if position + 1 < len(chain) else None
            if not failure.retryable or following is None:
                record_error(state, labels, failure.error)
                log_event("request_error", level="error", request_id=request_id, backend=name, route=route.pattern,
                          status=failure.error.status, error=failure.error.message)
                raise failure.error from None
            log_event("backend_fallback", level="warning", request_id=request_id, backend=name,
                      next=following.spec.name, error=failure.error.message, route=route.pattern)
        except ApiError as error:
            record_error(state, labels, error)
            raise
    raise ApiError.api_error("no backend to serve the request")  # a chain always has at least one


async def create_local(request: Request, state: ServerState, runtime: LocalModel, model: str, chat: ChatRequest,
                       labels: Labels):
    worker, info = await runtime.ready()
    check_size(chat, info.context_length)
    prompt = await render_prompt(worker, info, chat)
    settings = state.settings
    max_tokens = output_budget(len(prompt.tokens), chat.max_tokens, info,
                               cap=settings.max_output_tokens, policy=settings.max_tokens_policy)
    request_id = request.state.request_id
    record = InFlight(request_id=request_id, kind=chat.kind, session=chat.session_id,
                      prompt_tokens=len(prompt.tokens), max_tokens=max_tokens, stream=chat.stream)
    try:
        turn = start_turn(worker, chat, prompt, max_tokens, info, record)  # queued now: a full queue is a 529
    except QueueFull:
        raise UpstreamFailure(ApiError.overloaded(), retryable=True) from None
    log_event("request_start", request_id=request_id, session=chat.session_id, request_kind=chat.kind,
              model=model, stream=chat.stream, prompt_tokens=len(prompt.tokens), max_tokens=max_tokens,
              tools=len(chat.tools), queued=worker.pending - 1, backend=labels.backend, route=labels.route)
    return await respond(request, state, chat, labels, Usage(input_tokens=len(prompt.tokens)), turn)


async def create_remote(request: Request, state: ServerState, runtime: RemoteBackend, document: dict, model: str,
                        chat: ChatRequest, labels: Labels):
    reply = await runtime.engine.open(document, dict(request.headers), stream=chat.stream)
    log_event("request_start", request_id=request.state.request_id, session=chat.session_id,
              request_kind=chat.kind, model=model, stream=chat.stream, max_tokens=chat.max_tokens,
              tools=len(chat.tools), backend=labels.backend, route=labels.route)
    if isinstance(reply, PassthroughReply):
        return await pass_through(request, state, chat, labels, reply)
    return await respond(request, state, chat, labels, Usage(), RemoteTurn(reply, streamed=chat.stream))


async def respond(request: Request, state: ServerState, chat: ChatRequest, labels: Labels, start_usage: Usage,
                  turn: "JobResults | RemoteTurn"):
    if chat.stream:
        body = stream_events(state, request.state.request_id, chat, labels, start_usage, turn)
        return sse_response(body)
    return await complete_message(request, state, chat, labels, turn)


async def stream_events(state: ServerState, request_id: str, chat: ChatRequest, labels: Labels, start_usage: Usage,
                        turn: "JobResults | RemoteTurn") -> AsyncIterator[bytes]:
    encoder = StreamEncoder(new_message_id(), labels.model, omit_thinking=chat.omit_thinking)
    for name, data in encoder.start(start_usage):
        yield encode_sse(name, data)
    pending: asyncio.Future | None = None
    closing = asyncio.ensure_future(state.closing.wait())
    ended = False  # with a TurnEnd or an error event; otherwise the client went away
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
                raise ApiError.api_error("generation ended without a result") from None
            pending = None
            chunks: list[bytes] = []
            for item in [item, *turn.take_ready()]:  # behind the engine: what is there goes out in one write
                if isinstance(item, TurnEnd):
                    chunks += [encode_sse(name, data)
                               for name, data in encoder.finish(item.stop_reason, item.stop_sequence, item.usage)]
                    ended = True
                    yield b"".join(chunks)
                    log_finish(state, request_id, chat, labels, item)
                    return
                chunks += [encode_sse(name, data) for name, data in encoder.feed(item)]
            if chunks:
                yield b"".join(chunks)
    except ApiError as exc:
        ended = True
        yield stream_error(state, request_id, labels, exc)
    except Exception as exc:  # mid-stream failure: an error event, then the stream ends
        ended = True
        log_internal_error("request_error", exc, request_id=request_id, backend=labels.backend)
        record_status(state, labels, "error")
        yield encode_sse(*error_event("api_error", f"generation failed: {exc}"))
    finally:
        with anyio.CancelScope(shield=True):  # the client may be gone: the turn still ends, here and upstream
            for future in (pending, closing):
                if future is not None and not future.done():
                    future.cancel()
                    with contextlib.suppress(BaseException):
                        await future
            await turn.aclose()
        if not ended:
            log_cancelled(state, request_id, chat, labels)


async def until_done_or_gone(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None (and `work` cancelled) once the client has gone away."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return None
    return task.result()


async def complete_message(request: Request, state: ServerState, chat: ChatRequest, labels: Labels,
                           turn: "JobResults | RemoteTurn") -> JSONResponse:
    request_id = request.state.request_id
    builder = MessageBuilder(new_message_id(), labels.model, omit_thinking=chat.omit_thinking)

    async def collect() -> TurnEnd:
        async for item in turn:
            if isinstance(item, TurnEnd):
                return item
            builder.feed(item)
        raise ApiError.api_error("generation ended without a result")

    try:
        end = await until_done_or_gone(request, collect())
    finally:
        with anyio.CancelScope(shield=True):
            await turn.aclose()
    if end is None:
        log_cancelled(state, request_id, chat, labels)
        return JSONResponse(status_code=499, content={})
    log_finish(state, request_id, chat, labels, end)
    return JSONResponse(builder.build(end.stop_reason, end.stop_sequence, end.usage))
