"""Anthropic Messages ⇄ OpenAI Chat Completions, pure translation: the one import for the HTTP engines.

- protocol/openai_chat.py: to_openai_chat (the typed request → a Chat Completions body);
- openai_reply.py: from_openai_completion, OpenAIStreamReader, checked_call (replies → parsing events);
- upstream_errors.py: error_from_openai, rejected_param (upstream errors → ApiError / a key to drop).
"""

from __future__ import annotations

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.protocol.openai_chat import to_openai_chat
from mlxclaude.upstream.openai_reply import (
    OpenAIStreamReader,
    ReplyEnd,
    checked_call,
    custom_tools,
    from_openai_completion,
    usage_from_openai,
)
from mlxclaude.upstream.upstream_errors import DROPPABLE, error_from_openai, error_from_stream_chunk, error_message, rejected_param

__all__ = [
    "DROPPABLE",
    "OpenAIStreamReader",
    "ReplyEnd",
    "ReplyEvent",
    "TextPiece",
    "ThinkingPiece",
    "ToolCall",
    "checked_call",
    "custom_tools",
    "error_from_openai",
    "error_from_stream_chunk",
    "error_message",
    "from_openai_completion",
    "rejected_param",
    "to_openai_chat",
    "usage_from_openai",
]
