"""What the remote engines share over HTTP: the client, the API key from the environment, starting a
request (a transport failure or an error status becomes an TargetFailure) and reading SSE lines."""

from __future__ import annotations

import json
import os
from typing import Any, AsyncIterator, Callable, Optional

import httpx

from mlxclaude.protocol.errors import ApiError
from mlxclaude.redaction import redact, register_secret
from mlxclaude.routing.config import BackendSpec
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.upstream.remote_engine import RETRYABLE_STATUSES
from mlxclaude.upstream.sse import SSELines, SSELineTooLong, broke_off, line_too_long, sse_lines

CONNECT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024  # a whole (not streamed) reply or error body


def api_key(spec: BackendSpec) -> Optional[str]:
    """The key from the variable `api_key_env` names (None when unset or empty)."""
    if not spec.api_key_env:
        return None
    key = os.environ.get(spec.api_key_env) or None
    register_secret(key)  # never to be logged or relayed, whoever echoes it
    return key


def make_client(spec: BackendSpec) -> httpx.AsyncClient:
    api_key(spec)
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
    """The response once its status is 2xx (its body not read yet: close it when done), or TargetFailure:
    retryable for a connection failure, a timeout and the statuses in RETRYABLE_STATUSES."""
    request = client.build_request(method, url, json=json_body, headers=headers, params=params)
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException:
        raise TargetFailure(ApiError(504, "timeout_error", f"{spec.name}: no answer within {spec.timeout_s:g}s"),
                              retryable=True) from None
    except httpx.HTTPError as exc:
        raise TargetFailure(ApiError.api_error(f"{spec.name}: cannot reach {url}: {describe(exc)}"),
                              retryable=True) from None
    if response.status_code < 400:
        return response
    try:
        text = redact((await read_body(response, spec)).decode("utf-8", errors="replace"))
    except (httpx.HTTPError, ApiError):
        text = ""
    finally:
        await response.aclose()
    error = error_of(response.status_code, error_body(text), response.headers.get("retry-after"))
    raise TargetFailure(error, retryable=response.status_code in RETRYABLE_STATUSES)


def describe(exc: BaseException) -> str:
    """A transport error in words (httpx's own message is often empty)."""
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or (str(cause) if cause else "") or type(exc).__name__
    return text.splitlines()[0][:300]


async def read_body(response: httpx.Response, spec: BackendSpec) -> bytes:
    """A whole body, refused past MAX_BODY_BYTES."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError.api_error(f"{spec.name}: the reply is larger than {MAX_BODY_BYTES // 2**20} MiB")
        parts.append(chunk)
    return b"".join(parts)


def is_event_stream(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


async def sse_data(response: httpx.Response, spec: BackendSpec) -> AsyncIterator[str]:
    """The `data:` payloads of an SSE body, in order (comments, event names and blank lines skipped); a line
    over the cap, a transport failure or a body that ends mid-line raise the ApiError that ends the turn."""
    lines = SSELines()
    try:
        async for line in sse_lines(response.aiter_raw(), lines):
            if line.startswith(b"data:"):
                yield line[5:].decode("utf-8", errors="replace").strip()
    except SSELineTooLong as exc:
        raise line_too_long(spec.name, exc) from None
    except httpx.HTTPError as exc:
        raise mid_stream_error(spec, exc) from None
    if lines.partial:
        raise broke_off(spec.name, "the body ended mid-line")


def mid_stream_error(spec: BackendSpec, exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(504, "timeout_error", f"{spec.name}: the reply stalled for {spec.timeout_s:g}s")
    return broke_off(spec.name, describe(exc))
