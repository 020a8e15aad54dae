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
