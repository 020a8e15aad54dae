"""What the remote engines share over HTTP: the client, the API key from the environment, starting a
request (a transport failure or an error status becomes an UpstreamFailure) and reading SSE lines."""

from __future__ import annotations

import json
import os
from typing import Any, AsyncIterator, Callable, Optional

import httpx

from mlxclaude.protocol.errors import ApiError
from mlxclaude.routing.config import BackendSpec
from mlxclaude.upstream.engine import RETRYABLE_STATUSES, UpstreamFailure

CONNECT_TIMEOUT_S = 10.0


def api_key(spec: BackendSpec) -> Optional[str]:
    """The key from the variable `api_key_env` names (None when unset or empty)."""
    if not spec.api_key_env:
        return None
    return os.environ.get(spec.api_key_env) or None


def make_client(spec: BackendSpec) -> httpx.AsyncClient:
    timeout = httpx.Timeout(spec.timeout_s, connect=min(CONNECT_TIMEOUT_S, spec.timeout_s))
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


def error_body(response_text: str) -> Any:
    try:
        return json.loads(response_text)
    except ValueError:
        return response_text.strip()


async def start(client: httpx.AsyncClient, spec: BackendSpec, method: str, url: str, *,
                json_body: Any = None, headers: dict[str, str], params: Optional[dict[str, str]] = None,
                error_of: Callable[[int, Any, Optional[str]], ApiError]) -> httpx.Response:
    """The response once its status is 2xx (its body not read yet: close it when done), or UpstreamFailure:
    retryable for a connection failure, a timeout and the statuses in RETRYABLE_STATUSES."""
    request = client.build_request(method, url, json=json_body, headers=headers, params=params)
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException:
        raise UpstreamFailure(ApiError(504, "timeout_error", f"{spec.name}: no answer within {spec.timeout_s:g}s"),
                              retryable=True) from None
    except httpx.HTTPError as exc:
        raise UpstreamFailure(ApiError.api_error(f"{spec.name}: cannot reach {url}: {describe(exc)}"),
                              retryable=True) from None
    if response.status_code < 400:
        return response
    try:
        text = (await response.aread()).decode("utf-8", errors="replace")
    except httpx.HTTPError:
        text = ""
    finally:
        await response.aclose()
    error = error_of(response.status_code, error_body(text), response.headers.get("retry-after"))
    raise UpstreamFailure(error, retryable=response.status_code in RETRYABLE_STATUSES)


def describe(exc: BaseException) -> str:
    """A transport error in words (httpx's own message is often empty)."""
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or (str(cause) if cause else "") or type(exc).__name__
    return text.splitlines()[0][:300]


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of an SSE body, in order (comments, event names and blank lines skipped)."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            yield line[5:].strip()


def mid_stream_error(spec: BackendSpec, exc: BaseException) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(504, "timeout_error", f"{spec.name}: the reply stalled for {spec.timeout_s:g}s")
    return ApiError.api_error(f"{spec.name}: the reply broke off: {describe(exc)}")
