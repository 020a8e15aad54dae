"""What the server itself does within a reply (web search): the events that become `server_tool_use` and
`web_search_tool_result` blocks, in Anthropic's shapes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Optional

# Anthropic's web search error codes
SEARCH_ERRORS = ("invalid_tool_input", "unavailable", "max_uses_exceeded", "too_many_requests", "query_too_long")


@dataclass(frozen=True)
class SearchHit:
    url: str
    title: str
    snippet: str = ""
    page_age: Optional[str] = None


@dataclass(frozen=True)
class ServerToolUse:
    """The server runs `name` with `input` (a web search: {"query": …})."""
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebSearchResult:
    """The results of the search `tool_use_id`, or its error code."""
    tool_use_id: str
    hits: tuple[SearchHit, ...] = ()
    error_code: Optional[str] = None

    def block(self) -> dict[str, Any]:
        content: Any
        if self.error_code is not None:
            content = {"type": "web_search_tool_result_error", "error_code": self.error_code}
        else:
            content = [{"type": "web_search_result", "url": hit.url, "title": hit.title,
                        "encrypted_content": hit.snippet, "page_age": hit.page_age} for hit in self.hits]
        return {"type": "web_search_tool_result", "tool_use_id": self.tool_use_id, "content": content}

    def text(self) -> str:
        """What the model reads of it."""
        if self.error_code is not None:
            return f"The web search failed: {self.error_code}."
        if not self.hits:
            return "The web search found nothing."
        return "\n\n".join(f"[{number}] {hit.title}\n{hit.url}\n{hit.snippet}".rstrip()
                           for number, hit in enumerate(self.hits, 1))


def new_server_tool_id() -> str:
    return f"srvtoolu_{secrets.token_hex(12)}"


def server_tool_text(block: dict[str, Any]) -> str:
    """An earlier turn's `server_tool_use` (web search) or `web_search_tool_result` block, as text."""
    if block.get("type") == "server_tool_use" and block.get("name") == "web_search":
        query = (block.get("input") or {}).get("query", "") if isinstance(block.get("input"), dict) else ""
        return f"[searched the web for: {query}]"
    if block.get("type") != "web_search_tool_result":
        return ""
    content = block.get("content")
    if isinstance(content, dict):
        return f"[web search failed: {content.get('error_code', 'unavailable')}]"
    lines = [f"- {item.get('title') or item.get('url')} ({item.get('url')})" for item in content or ()
             if isinstance(item, dict) and item.get("url")]
    return "Web search results:\n" + "\n".join(lines) if lines else "[web search: no results]"
