"""Tool-call formats, one module per model family; the chat template tells which one a model uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.hermes import parse_hermes


@dataclass(frozen=True)
class ToolFormat:
    """How one model family wraps a tool call: `open` body `close`; `parse` returns None for a malformed body."""

    open: str
    close: str
    parse: Callable[[str], list[ToolCall] | None]
    name: str = ""

    def is_used_by(self, chat_template: str) -> bool:
        return self.open in chat_template


HERMES = ToolFormat("<tool_call>", "</tool_call>", parse_hermes, name="hermes")

# Checked in order: put more specific formats before those whose markers they share.
KNOWN_TOOL_FORMATS: tuple[ToolFormat, ...] = (HERMES,)


def detect_tool_format(chat_template: str | None) -> ToolFormat | None:
    if not chat_template:
        return None
    return next((fmt for fmt in KNOWN_TOOL_FORMATS if fmt.is_used_by(chat_template)), None)


__all__ = ["HERMES", "KNOWN_TOOL_FORMATS", "ToolFormat", "detect_tool_format", "parse_hermes"]
