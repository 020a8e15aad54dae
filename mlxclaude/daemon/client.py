"""Three small calls to a running daemon, with short timeouts. Connection failures return None.

Proxy variables are ignored (trust_env=False): the daemon is local, and HTTP_PROXY must not capture loopback.
"""

from __future__ import annotations

from typing import Any, Optional

import httpx

TIMEOUT = httpx.Timeout(3.0, connect=1.0)


def _headers(token: Optional[str]) -> dict[str, str]:
    return {"x-api-key": token} if token else {}


def health(url: str, *, timeout: httpx.Timeout | float = TIMEOUT) -> Optional[dict[str, Any]]:
    """/health's body plus `http_status` ("ok" is 200; "loading" and "failed" are 503); None if unreachable."""
    try:
        response = httpx.get(f"{url}/health", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    body.setdefault("status", "ok" if response.status_code == 200 else "unknown")
    body["http_status"] = response.status_code
    return body


def status(url: str, token: Optional[str] = None, *,
           timeout: httpx.Timeout | float = TIMEOUT) -> Optional[dict[str, Any]]:
    """GET /mlxclaude/status; None when unreachable or refused."""
    try:
        response = httpx.get(f"{url}/mlxclaude/status", headers=_headers(token), timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def shutdown(url: str, token: Optional[str] = None, *, timeout: httpx.Timeout | float = TIMEOUT) -> bool:
    """POST /mlxclaude/shutdown; True when the daemon accepted it."""
    try:
        response = httpx.post(f"{url}/mlxclaude/shutdown", headers=_headers(token), timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code in (200, 202)
