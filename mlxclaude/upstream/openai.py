"""OpenAI-compatible engines (vLLM, SGLang, llama.cpp server, Ollama, LM Studio, mlx_lm.server) and Azure
OpenAI: the Anthropic request is translated to Chat Completions, the reply back into our reply events.

A parameter the backend rejects (400/422 naming it) is dropped and the request sent again; it stays
dropped for this backend, logged once (LiteLLM's drop_params). Reasoning models (OpenAI's and Azure's o-series
and GPT-5) take `max_completion_tokens` instead of `max_tokens` and only their default temperature: a known
family is sent that from the start, another deployment learns it from its first rejection, which names
`max_completion_tokens` (the limit is renamed, never lost).
"""

from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator, Optional, Union

import httpx

from mlxclaude.logs import log_event
from mlxclaude.parsing.events import ReplyEvent
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.routing.config import AZURE_DEFAULT_API_VERSION, BackendSpec
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.upstream import http
from mlxclaude.upstream.openai_wire import (
    OpenAIStreamReader,
    ReplyEnd,
    error_from_openai,
    from_openai_completion,
    rejected_param,
    to_openai_chat,
)
from mlxclaude.upstream.remote_engine import EventReply, ReplyTiming
from mlxclaude.upstream.sse import broke_off

MAX_DROPS_PER_REQUEST = 4
# OpenAI's and Azure's reasoning models, by model or deployment name (LiteLLM maps the same families)
REASONING_FAMILY = re.compile(r"^(?:.*/)?(?:o\d+(?:$|[-_.])|gpt-5)", re.IGNORECASE)
FIXED_SAMPLING = ("temperature", "top_p")  # what reasoning models only take at its default


class OpenAIEngine:
    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self._client = http.make_client(spec)
        self._dropped: set[str] = set(spec.drop_params)
        self._renamed: dict[str, str] = {}
        if REASONING_FAMILY.match(spec.deployment or spec.model or ""):
            self._renamed["max_tokens"] = "max_completion_tokens"
            self._dropped.update(FIXED_SAMPLING)

    # --- where and how ---------------------------------------------------------------------------------

    def endpoint(self) -> tuple[str, Optional[dict[str, str]]]:
        base = (self.spec.url or "").rstrip("/")
        if self.spec.kind == "azure":
            return (f"{base}/openai/deployments/{self.spec.deployment}/chat/completions",
                    {"api-version": self.spec.api_version or AZURE_DEFAULT_API_VERSION})
        return f"{base}/chat/completions", None


    def model_for(self, chat: ChatRequest) -> str:
        if self.spec.kind == "azure":
            return self.spec.deployment or chat.model
        return self.spec.model or chat.model

    # --- the request -----------------------------------------------------------------------------------

    async def open(self, chat: ChatRequest, document: dict, headers: dict[str, str], *, stream: bool) -> EventReply:
        url, params = self.endpoint()
        timing = ReplyTiming()
        for _ in range(MAX_DROPS_PER_REQUEST + 1):
            body = to_openai_chat(chat, model=self.model_for(chat), stream=stream, drop=frozenset(self._dropped))
            for old, new in self._renamed.items():
                if old in body:
                    body[new] = body.pop(old)
            try:
                response = await http.start(self._client, self.spec, "POST", url, json_body=body,
                                            headers={"content-type": "application/json", **auth_headers(self.spec)},
                                            params=params, error_of=openai_error)
            except TargetFailure as failure:
                if not self._learn_rejection(failure, body):
                    raise
                continue
            # read as what came: some servers answer a streaming request with one JSON body
            streamed = http.is_event_stream(response)
            items = self._stream_items(response, chat) if streamed else self._whole_items(response, chat)
            return EventReply(items, timing, response.aclose)
        raise TargetFailure(ApiError.invalid_request(f"{self.spec.name}: too many parameters rejected"),
                              retryable=False)

    def _learn_rejection(self, failure: TargetFailure, body: dict) -> bool:
        """Whether the failure named a parameter we sent and can do without or rename (learnt for good)."""
        name = getattr(failure.error, "rejected_param", None)
        if name is None or name not in body or name in self._dropped:
            return False
        if name == "max_tokens" and "max_completion_tokens" in failure.error.message:
            self._renamed[name] = "max_completion_tokens"
            log_event("param_renamed", level="warning", backend=self.spec.name, param=name,
                      to="max_completion_tokens", note="the backend asks for it; sent so from now on")
            return True
        self._dropped.add(name)
        log_event("param_dropped", level="warning", backend=self.spec.name, param=name,
                  note="the backend rejects it; not sent to it again")
        return True

    async def _stream_items(self, response: httpx.Response,
                            chat: ChatRequest) -> AsyncIterator[Union[ReplyEvent, ReplyEnd]]:
        reader = OpenAIStreamReader(tools=chat.tools, stop_sequences=chat.stop_sequences)
        done = False
        try:
            async for data in http.sse_data(response, self.spec):
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                if isinstance(chunk, dict):
                    for event in reader.feed(chunk):
                        yield event
        finally:
            await response.aclose()
        if not done and reader.finish_reason is None:
            raise broke_off(self.spec.name, "the stream ended with no finish_reason and no [DONE]")
        events, end = reader.finish()
        for event in events:
            yield event
        yield end

    async def _whole_items(self, response: httpx.Response,
                           chat: ChatRequest) -> AsyncIterator[Union[ReplyEvent, ReplyEnd]]:
        try:
            body: Any = json.loads(await http.read_body(response, self.spec))
        except (ValueError, httpx.HTTPError) as exc:
            raise http.mid_stream_error(self.spec, exc) from None
        finally:
            await response.aclose()
        if not isinstance(body, dict) or not ("choices" in body or "error" in body or body.get("object") == "error"):
            raise ApiError.api_error(f"{self.spec.name}: the reply is not a chat completion")
        # an error body raises its ApiError here
        events, end = from_openai_completion(body, tools=chat.tools, stop_sequences=chat.stop_sequences)
        for event in events:
            yield event
        yield end

    async def count_tokens(self, document: dict, headers: dict[str, str]) -> Optional[int]:
        return None  # Chat Completions has no counting endpoint

    async def aclose(self) -> None:
        await self._client.aclose()


def auth_headers(spec: BackendSpec) -> dict[str, str]:
    """Azure's `api-key` header or a Bearer token, from the variable `api_key_env` names (none when unset)."""
    key = http.api_key(spec)
    if key is None:
        return {}
    return {"api-key": key} if spec.kind == "azure" else {"authorization": f"Bearer {key}"}


def openai_error(status: int, body: Any, retry_after: Optional[str]) -> ApiError:
    error = error_from_openai(status, body, retry_after=retry_after)
    error.rejected_param = rejected_param(status, body)  # type: ignore[attr-defined]
    return error
