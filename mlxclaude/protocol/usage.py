"""Token usage as Anthropic reports it: input_tokens counts only the uncached rest of the prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    web_search_requests: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The API's usage object; the newer optional fields are there, null where they do not apply."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation_input_tokens,
                               "ephemeral_1h_input_tokens": 0},
            "server_tool_use": ({"web_search_requests": self.web_search_requests, "web_fetch_requests": 0}
                                if self.web_search_requests else None),
            "output_tokens_details": None,
            "service_tier": "standard",
        }
