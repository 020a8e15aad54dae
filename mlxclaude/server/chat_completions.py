"""POST /v1/chat/completions: OpenAI's Chat Completions on the one request path. The body becomes the Messages
document every target takes (protocol/chat_completions_in.py), the turn opens as for /v1/messages (routes,
fallbacks, accounting, logs, metrics), and its Anthropic reply — whole or streamed — is translated on the way
out (protocol/chat_completions_out.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse

from mlxclaude.protocol.body import decode_json_body
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.chat_completions_in import DEFAULT_MAX_TOKENS, anthropic_document
from mlxclaude.protocol.chat_completions_out import ChunkEncoder, completion
from mlxclaude.server.messages import open_turn, prepare_document, whole_message
from mlxclaude.server.sse import sse_response
from mlxclaude.server.state import ServerState
from mlxclaude.server.translated_stream import translated


def prepare(raw: bytes, headers: Mapping[str, str], default_max_tokens: int) -> tuple[dict, dict, str, ChatRequest]:
    body = decode_json_body(raw)
    document = anthropic_document(body, default_max_tokens=default_max_tokens)
    _, model, chat = prepare_document(document, headers)
    return body, document, model, chat


async def create_chat_completion(request: Request):
    state: ServerState = request.app.state.mlxclaude
    default_max = state.settings.max_output_tokens or DEFAULT_MAX_TOKENS
    body, document, model, chat = await asyncio.to_thread(prepare, await request.body(), request.headers, default_max)
    turn, account = await open_turn(request, document, model, chat)
    response_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if chat.stream:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        encoder = ChunkEncoder(response_id=response_id, model=model, created=created, include_usage=include_usage)
        return sse_response(translated(turn.stream(), encoder.feed, done=b"data: [DONE]\n\n"))
    message = await whole_message(request, turn, account)
    if message is None:
        return JSONResponse(status_code=499, content={})
    return JSONResponse(completion(message, response_id=response_id, model=model, created=created))
