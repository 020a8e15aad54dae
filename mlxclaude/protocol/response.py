"""Build the non-streaming Anthropic Message from reply events."""

from __future__ import annotations

from typing import Any

from mlxclaude.parsing.events import ReplyEvent
from mlxclaude.protocol.blocks import BlockAssembler
from mlxclaude.protocol.usage import Usage


class MessageBuilder:
    """Same block rules as the stream: the result equals what an SDK accumulates from StreamEncoder."""

    def __init__(self, message_id: str, model: str, *, omit_thinking: bool = False) -> None:
        self.message_id = message_id
        self.model = model
        self._blocks = BlockAssembler(omit_thinking=omit_thinking)

    @property
    def has_tool_use(self) -> bool:
        return self._blocks.has_tool_use

    def feed(self, event: ReplyEvent) -> None:
        self._blocks.feed(event)

    def build(self, stop_reason: str, stop_sequence: str | None, usage: Usage) -> dict[str, Any]:
        self._blocks.close()
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self._blocks.content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": usage.to_wire(),
        }
