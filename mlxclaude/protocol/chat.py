"""The model-side view of a request: template-ready messages, tools and generation options.

Pure data: built by protocol.request from the Anthropic wire format, consumed by the engine.
Messages follow the Hugging Face chat-template convention:
  {"role": "system"|"user"|"assistant"|"tool", "content": str,
   "tool_calls": [{"type": "function", "id": str, "function": {"name": str, "arguments": dict}}],
   "reasoning_content": str, "tool_call_id": str, "name": str}
Tools follow the OpenAI function convention: {"type": "function", "function": {name, description, parameters}}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

ThinkingMode = Literal["enabled", "disabled", "default"]


@dataclass(frozen=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: Optional[str] = None
    disable_parallel_tool_use: bool = False


@dataclass(frozen=True)
class WebSearchTool:
    """The request's `web_search_…` server tool: the server runs the searches the model asks for."""
    name: str = "web_search"
    max_uses: Optional[int] = None
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sampling:
    temperature: Optional[float] = None  # None: not given (Anthropic's default, 1.0)
    top_p: Optional[float] = None
    top_k: Optional[int] = None

    @property
    def effective_temperature(self) -> float:
        return 1.0 if self.temperature is None else self.temperature


class _WithoutImageData(json.JSONEncoder):
    def iterencode(self, o: Any, _one_shot: bool = False):
        return super().iterencode(_strip_image_data(o), _one_shot)


def _strip_image_data(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("type") == "image":
            return {"type": "image"}
        return {key: _strip_image_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip_image_data(item) for item in value]
    return value


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    web_search: Optional[WebSearchTool] = None
    thinking: ThinkingMode = "default"
    thinking_budget: Optional[int] = None  # thinking.budget_tokens
    effort: Optional[str] = None  # output_config.effort
    omit_thinking: bool = False  # thinking.display "omitted": thinking blocks come back empty, signed
    max_tokens: int = 4096
    stop_sequences: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = False
    has_images: bool = False
    unreadable: tuple[str, ...] = ()  # documents that could not be read as text, and why (a 400 where text is needed)
    json_schema: Optional[dict[str, Any]] = None
    assistant_prefill: str = ""
    session_id: Optional[str] = None
    user_id: Optional[str] = None  # metadata.user_id
    kind: str = "main"

    def require_readable(self) -> None:
        """For a target that reads documents as text: a 400 naming the first one it cannot read."""
        if self.unreadable:
            from mlxclaude.protocol.errors import ApiError

            raise ApiError.invalid_request(self.unreadable[0])

    def text_size(self) -> int:
        """Characters of everything the template will render as text (messages and tools, as JSON; an image
        counts as its part's few characters, not its data)."""
        return len(json.dumps([self.messages, self.tools, self.json_schema], ensure_ascii=False, default=str,
                              cls=_WithoutImageData))
