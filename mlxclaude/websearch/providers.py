"""Running one search on the configured provider (SearXNG's JSON API, Brave's web search API, Tavily's search
API) over httpx: hits, or a SearchFailed carrying Anthropic's error code."""

from __future__ import annotations

import os
from typing import Any, Optional
from urllib.parse import urlsplit

import httpx

from mlxclaude.logs import log_event
from mlxclaude.protocol.server_tools import SearchHit
from mlxclaude.redaction import register_secret
from mlxclaude.websearch.config import WebSearchConfig

MAX_QUERY_CHARS = 400


class SearchFailed(Exception):
    def __init__(self, code: str, why: str) -> None:
        super().__init__(why)
        self.code = code


async def search(config: WebSearchConfig, query: str, *, allowed: tuple[str, ...] = (),
                 blocked: tuple[str, ...] = ()) -> list[SearchHit]:
    if not query.strip():
        raise SearchFailed("invalid_tool_input", "an empty query")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchFailed("query_too_long", f"a query longer than {MAX_QUERY_CHARS} characters")
    key = os.environ.get(config.api_key_env) if config.api_key_env else None
    register_secret(key)
    try:
        async with httpx.AsyncClient(timeout=config.timeout_s, follow_redirects=False) as client:
            hits = await _PROVIDERS[config.provider](client, config, query, key)
    except httpx.TimeoutException:
        raise SearchFailed("unavailable", f"{config.provider} did not answer within {config.timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise SearchFailed("unavailable", f"{config.provider}: {exc}") from None
    kept = [hit for hit in hits if _allowed(hit.url, allowed, blocked)]
    return kept[:config.max_results]


def _check(response: httpx.Response, provider: str) -> Any:
    if response.status_code == 429:
        raise SearchFailed("too_many_requests", f"{provider} answered 429")
    if response.status_code >= 400:
        raise SearchFailed("unavailable", f"{provider} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SearchFailed("unavailable", f"{provider} did not answer JSON") from None


async def _searxng(client: httpx.AsyncClient, config: WebSearchConfig, query: str, key: Optional[str]):
    response = await client.get(f"{config.url}/search", params={"q": query, "format": "json"})
    body = _check(response, "searxng")
    return [SearchHit(url=item["url"], title=str(item.get("title") or item["url"]),
                      snippet=str(item.get("content") or ""), page_age=item.get("publishedDate"))
            for item in (body.get("results") or []) if isinstance(item, dict) and isinstance(item.get("url"), str)]


async def _brave(client: httpx.AsyncClient, config: WebSearchConfig, query: str, key: Optional[str]):
    response = await client.get(f"{config.url}/res/v1/web/search", params={"q": query, "count": config.max_results},
                                headers={"accept": "application/json", "x-subscription-token": key or ""})
    body = _check(response, "brave")
    results = (body.get("web") or {}).get("results") or []
    return [SearchHit(url=item["url"], title=str(item.get("title") or item["url"]),
                      snippet=str(item.get("description") or ""), page_age=item.get("age"))
            for item in results if isinstance(item, dict) and isinstance(item.get("url"), str)]


async def _tavily(client: httpx.AsyncClient, config: WebSearchConfig, query: str, key: Optional[str]):
    response = await client.post(f"{config.url}/search", json={"query": query, "max_results": config.max_results},
                                 headers={"authorization": f"Bearer {key or ''}"})
    body = _check(response, "tavily")
    return [SearchHit(url=item["url"], title=str(item.get("title") or item["url"]),
                      snippet=str(item.get("content") or ""), page_age=item.get("published_date"))
            for item in (body.get("results") or []) if isinstance(item, dict) and isinstance(item.get("url"), str)]


_PROVIDERS = {"searxng": _searxng, "brave": _brave, "tavily": _tavily}


def _allowed(url: str, allowed: tuple[str, ...], blocked: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower()

    def under(domain: str) -> bool:
        domain = domain.lower().lstrip(".")
        return host == domain or host.endswith("." + domain)

    if allowed and not any(under(domain) for domain in allowed):
        return False
    return not any(under(domain) for domain in blocked)


def log_search(request_id: str, config: WebSearchConfig, query: str, hits: int, error: Optional[str]) -> None:
    log_event("web_search", request_id=request_id, provider=config.provider, query=query[:200], results=hits,
              error=error)
