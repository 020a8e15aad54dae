"""POST /v1/messages (streaming and not) and POST /v1/messages/count_tokens: parse, route over the targets
in order (fallbacks after a retryable failure), answer with the turn."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Awaitable, Mapping, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from mlxclaude.logs import log_event
from mlxclaude.protocol.body import decode_json_body
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.kinds import classify, session_id_of
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_count_tokens_params, parse_create_params
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.sse import sse_response
from mlxclaude.server.state import ServerState
from mlxclaude.server.target import Turn, TurnRequest

T = TypeVar("T")


def prepare_create(raw: bytes, headers: Mapping[str, str]) -> tuple[dict, str, ChatRequest]:
    """Body bytes → the request as sent (for a remote backend), the model id asked for and the typed request
    (on a worker thread: it scales with the body)."""
    return prepare_document(decode_json_body(raw), headers)


def prepare_document(document: dict, headers: Mapping[str, str]) -> tuple[dict, str, ChatRequest]:
    """A Messages document (as sent, or as another front door translated it) → the model id and typed request."""
    params = parse_create_params(document)
    metadata_user = params.metadata.user_id if params.metadata else None
    chat = to_chat_request(params, session_id=session_id_of(headers, metadata_user))
    return document, params.model, replace(chat, kind=classify(chat))


def prepare_count(raw: bytes, headers: Mapping[str, str]) -> tuple[dict, ChatRequest]:
    document = decode_json_body(raw)
    params = parse_count_tokens_params(document)
    return document, to_chat_request(params, session_id=session_id_of(headers), kind="count")


async def count_tokens(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.mlxclaude
    document, chat = await asyncio.to_thread(prepare_count, await request.body(), request.headers)
    route, chain = state.backends.plan(chat.model)
    turn_request = TurnRequest(request.state.request_id, document, chat, dict(request.headers))
    counted = await state.backends.count_tokens(chain, turn_request)
    log_event("count_tokens", request_id=request.state.request_id, session=chat.session_id,
              request_kind="count", prompt_tokens=counted, backend=chain[0].spec.name, route=route.pattern)
    return JSONResponse({"input_tokens": counted})


async def create_message(request: Request):
    document, model, chat = await asyncio.to_thread(prepare_create, await request.body(), request.headers)
    turn, account = await open_turn(request, document, model, chat)
    return await answer(request, turn, account)


async def open_turn(request: Request, document: dict, model: str, chat: ChatRequest) -> tuple[Turn, RequestAccount]:
    """The one request path of every front door: route, then open a turn on the first target that takes it
    (the next after a retryable failure)."""
    state: ServerState = request.app.state.mlxclaude
    route, chain = state.backends.plan(model, images=chat.has_images, image_backend=state.settings.image_backend)
    turn_request = TurnRequest(request.state.request_id, document, chat, dict(request.headers))
    account = RequestAccount(state, request.state.request_id, chat, model, route.pattern)
    for position, target in enumerate(chain):
        name = target.spec.name
        account.attempt(name)
        try:
            turn = await target.open(turn_request, account)
        except TargetFailure as failure:
            if failure.retryable and failure.counts_against_health:  # the backend's fault, not the request's
                state.backends.health.failed(name, failure.error.message)
            following = chain[position + 1] if position + 1 < len(chain) else None
            if not failure.retryable or following is None:
                account.failed(failure.error)
                raise failure.error from None
            account.fell_back(following.spec.name, failure.error)
            continue
        except ApiError as error:
            account.failed(error)
            raise
        state.backends.health.succeeded(name)
        return turn, account
    raise ApiError.api_error("no backend to serve the request")  # a chain always has at least one


async def answer(request: Request, turn: Turn, account: RequestAccount):
    if account.chat.stream:
        return sse_response(turn.stream())
    message = await whole_message(request, turn, account)
    return JSONResponse(message) if message is not None else JSONResponse(status_code=499, content={})


async def whole_message(request: Request, turn: Turn, account: RequestAccount) -> dict | None:
    """The turn's whole reply (None when the client went away first: counted as cancelled)."""
    try:
        message = await until_done_or_gone(request, turn.message())
    except ApiError as error:
        account.failed(error)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await turn.aclose()
    if message is None:
        account.cancelled()
    return message


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
