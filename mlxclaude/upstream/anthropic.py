"""Anthropic-compatible engines (vLLM's or llama.cpp's /v1/messages, or Anthropic itself): the request
goes through as the client sent it (after our validation), with this backend's model and key; the reply
comes back as it is, its usage read on the way for the logs and metrics."""

from __future__ import annotations

import json
from typing import Any, Optional

import httpx

from mlxclaude.protocol.canon import canonical_wire_system
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError, error_type_for_status
from mlxclaude.routing.config import BackendSpec
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.upstream import http
from mlxclaude.upstream.remote_engine import PassthroughReply, ReplyTiming

ANTHROPIC_VERSION = "2023-06-01"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def anthropic_url(spec: BackendSpec, path: str) -> str:
    """`{url}/v1/{path}`, whether or not the configured url already ends in /v1."""
    base = (spec.url or "").rstrip("/")
    return f"{base}/{path}" if base.endswith("/v1") else f"{base}/v1/{path}"


def anthropic_headers(spec: BackendSpec) -> dict[str, str]:
    key = http.api_key(spec)
    return {"anthropic-version": ANTHROPIC_VERSION, **({"x-api-key": key} if key is not None else {})}


def anthropic_error(status: int, body: Any, retry_after: Optional[str]) -> ApiError:
    """The backend's own error type and message (it speaks our protocol), or one made from its status."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type") if isinstance(error.get("type"), str) else error_type_for_status(status)
        return ApiError(status, kind, error["message"], retry_after=retry_after)
    text = body if isinstance(body, str) and body else f"the backend answered HTTP {status}"
    return ApiError(status, error_type_for_status(status), text[:2000], retry_after=retry_after)


class AnthropicEngine:
    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self._client = http.make_client(spec)

    def url(self, path: str) -> str:
        return anthropic_url(self.spec, path)

    def headers(self, incoming: dict[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json", **anthropic_headers(self.spec)}
        headers.update({name: incoming[name] for name in FORWARDED_HEADERS if incoming.get(name)})
        return headers

    def body(self, request: dict, *, stream: Optional[bool] = None) -> dict:
        body = {name: value for name, value in request.items() if name not in self.spec.drop_params}
        if "system" in body:  # Claude Code's per-run billing line would defeat the backend's prefix cache
            body["system"] = canonical_wire_system(body["system"])
        if self.spec.model:
            body["model"] = self.spec.model
        if stream is not None:
            body["stream"] = stream
        return body

    async def open(self, chat: ChatRequest, request: dict, headers: dict[str, str], *,
                   stream: bool) -> PassthroughReply:
        timing = ReplyTiming()
        response = await http.start(self._client, self.spec, "POST", self.url("messages"),
                                    json_body=self.body(request, stream=stream), headers=self.headers(headers),
                                    error_of=anthropic_error)
        if stream and http.is_event_stream(response):
            return PassthroughReply(chunks=self._bytes(response), timing=timing, close=response.aclose,
                                    backend=self.spec.name)
        try:
            body = json.loads(await http.read_body(response, self.spec))
        except (ValueError, httpx.HTTPError, ApiError) as exc:
            raise TargetFailure(http.mid_stream_error(self.spec, exc), retryable=True) from None
        finally:
            await response.aclose()
        timing.arrived()
        if isinstance(body, dict) and body.get("type") == "error":
            raise TargetFailure(anthropic_error(500, body, None), retryable=True)
        if not isinstance(body, dict) or body.get("type", "message") != "message":
            raise TargetFailure(ApiError.api_error(f"{self.spec.name}: the reply is not a message"),
                                  retryable=True)
        if stream:
            raise TargetFailure(ApiError.api_error(f"{self.spec.name}: answered a streaming request with one "
                                                     "JSON body, not an event stream"), retryable=True)
        return PassthroughReply(body=body, timing=timing, close=response.aclose, backend=self.spec.name)

    async def _bytes(self, response: httpx.Response):
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise http.mid_stream_error(self.spec, exc) from None
        finally:
            await response.aclose()

    async def count_tokens(self, request: dict, headers: dict[str, str]) -> Optional[int]:
        body = self.body({key: value for key, value in request.items()
                          if key in ("model", "messages", "system", "tools", "tool_choice", "thinking")})
        try:
            response = await http.start(self._client, self.spec, "POST", self.url("messages/count_tokens"),
                                        json_body=body, headers=self.headers(headers), error_of=anthropic_error)
        except TargetFailure:
            return None
        try:
            counted = json.loads(await response.aread()).get("input_tokens")
        except (ValueError, AttributeError, httpx.HTTPError):
            return None
        finally:
            await response.aclose()
        return counted if isinstance(counted, int) else None

    async def aclose(self) -> None:
        await self._client.aclose()
