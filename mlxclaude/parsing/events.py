"""What the output parser hands to the protocol layer: one event per piece of a reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class TextPiece:
    text: str


@dataclass(frozen=True)
class ThinkingPiece:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A complete, parsed tool call. `arguments` is always a JSON object."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


ReplyEvent = Union[TextPiece, ThinkingPiece, ToolCall]
