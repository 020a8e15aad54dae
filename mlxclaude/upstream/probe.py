"""Is a remote backend there? One GET of its model list, as `doctor` and `status` ask it (sync; never
shows the key)."""

from __future__ import annotations

from typing import Any

import httpx

from mlxclaude.routing.config import AZURE_DEFAULT_API_VERSION, BackendSpec
from mlxclaude.upstream import http
from mlxclaude.upstream.anthropic import anthropic_headers, anthropic_url
from mlxclaude.upstream.openai import auth_headers


def probe_request(spec: BackendSpec) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, query params, headers) of the model-list call for this backend."""
    if spec.kind == "anthropic":
        return anthropic_url(spec, "models"), {}, anthropic_headers(spec)
    base = (spec.url or "").rstrip("/")
    if spec.kind == "azure":
        return (f"{base}/openai/models", {"api-version": spec.api_version or AZURE_DEFAULT_API_VERSION},
                auth_headers(spec))
    return f"{base}/models", {}, auth_headers(spec)


def probe_backend(spec: BackendSpec, timeout: float = 5.0) -> tuple[bool, str]:
    """(True, "reachable (N models)") or (False, why)."""
    url, params, headers = probe_request(spec)
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return False, f"no answer from {url} within {timeout:g}s"
    except httpx.HTTPError as exc:
        return False, f"cannot reach {url}: {http.describe(exc)}"
    if response.status_code in (401, 403):
        where = f"${spec.api_key_env}" if spec.api_key_env else "no api_key_env is set"
        return False, f"{url} refused the key (HTTP {response.status_code}; {where})"
    if response.status_code >= 500:
        return False, f"{url} answered HTTP {response.status_code}"
    if response.status_code >= 400:
        return True, f"reachable (GET {url} answered HTTP {response.status_code})"
    return True, f"reachable ({count_models(response)})"


def count_models(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return "answers"
    models = body.get("data") if isinstance(body, dict) else None
    return f"{len(models)} models" if isinstance(models, list) else "answers"
