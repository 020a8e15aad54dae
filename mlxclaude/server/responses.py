"""POST /v1/responses: OpenAI's Responses API (what Codex CLI speaks) on the one request path, translated in
(protocol/responses_in.py) and out (protocol/responses_out.py) as /v1/chat/completions is.

`previous_response_id` continues a response this daemon still holds: the last RESPONSES_KEPT responses made
without `store: false`, in memory (a restart forgets them); any other id is a 400 that says to send the whole
input, as Codex does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from typing import Any, Mapping, Optional

from fastapi import Request
from fastapi.responses import JSONResponse

from mlxclaude.protocol.body import decode_json_body
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.chat_completions_in import DEFAULT_MAX_TOKENS, tool_input
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.responses_in import anthropic_document
from mlxclaude.protocol.responses_out import ResponseEvents, new_id, output_of, whole_response
from mlxclaude.server.messages import open_turn, prepare_document, whole_message
from mlxclaude.server.sse import sse_response
from mlxclaude.server.state import ServerState
from mlxclaude.server.translated_stream import event_line, translated

RESPONSES_KEPT = 64


class ResponseStore:
    """Conversations by response id (Messages turns, the reply included), the most recent RESPONSES_KEPT."""

    def __init__(self, kept: int = RESPONSES_KEPT) -> None:
        self._kept = kept
        self._turns: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, response_id: str) -> Optional[list[dict[str, Any]]]:
        with self._lock:
            return self._turns.get(response_id)

    def put(self, response_id: str, turns: list[dict[str, Any]], output: list[dict[str, Any]]) -> None:
        reply = [block for block in (_block_of(item) for item in output) if block is not None]
        with self._lock:
            self._turns[response_id] = [*turns, {"role": "assistant", "content": reply or [{"type": "text", "text": ""}]}]
            while len(self._turns) > self._kept:
                self._turns.popitem(last=False)


def _block_of(item: dict[str, Any]) -> Optional[dict[str, Any]]:
    if item.get("type") == "message":
        return {"type": "text", "text": "".join(part.get("text", "") for part in item.get("content") or [])}
    if item.get("type") == "function_call":
        return {"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                "input": tool_input(item.get("arguments"))}
    return None


def store_of(state: ServerState) -> ResponseStore:
    if state.responses is None:
        state.responses = ResponseStore()
    return state.responses


def prepare(raw: bytes, headers: Mapping[str, str], store: ResponseStore, default_max_tokens: int,
            web_search: bool) -> tuple[dict, dict, str, ChatRequest]:
    body = decode_json_body(raw)
    history = None
    previous = body.get("previous_response_id") if isinstance(body, dict) else None
    if previous:
        history = store.get(str(previous))
        if history is None:
            raise ApiError.invalid_request(f"previous_response_id: {previous} is not held by this server (it keeps "
                                           f"the last {RESPONSES_KEPT} responses in memory): send the whole input")
    document = anthropic_document(body, history, default_max_tokens=default_max_tokens, web_search=web_search)
    _, model, chat = prepare_document(document, headers)
    return body, document, model, chat


async def create_response(request: Request):
    state: ServerState = request.app.state.mlxclaude
    store = store_of(state)
    default_max = state.settings.max_output_tokens or DEFAULT_MAX_TOKENS
    body, document, model, chat = await asyncio.to_thread(prepare, await request.body(), request.headers, store,
                                                          default_max, state.web_search is not None)
    turn, account = await open_turn(request, document, model, chat)
    response_id, created = new_id("resp"), int(time.time())
    keep = body.get("store") is not False
    if chat.stream:
        events = ResponseEvents(response_id=response_id, model=model, created=created)
        on_end = (lambda: store.put(response_id, document["messages"], events.output)) if keep else None
        return sse_response(translated(turn.stream(), events.feed, encode=event_line, on_error=events.failed,
                                       on_end=on_end))
    message = await whole_message(request, turn, account)
    if message is None:
        return JSONResponse(status_code=499, content={})
    if keep:
        store.put(response_id, document["messages"], output_of(message))
    return JSONResponse(whole_response(message, response_id=response_id, model=model, created=created))
