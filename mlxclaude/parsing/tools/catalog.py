"""The request's tools as the parser needs them: names to validate against, schemas to coerce by."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.coerce import coerce_arguments


def tool_name_and_schema(tool: Any) -> tuple[str, dict[str, Any]] | None:
    """(name, parameters schema) of a tool in HF/OpenAI function form or Anthropic form."""
    if not isinstance(tool, dict):
        return None
    function: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    schema = function.get("parameters", function.get("input_schema"))
    return name, schema if isinstance(schema, dict) else {}


class ToolCatalog:
    """Known tools. `None` tools means "not told": every name is accepted and nothing is coerced."""

    def __init__(self, tools: Iterable[Any] | None) -> None:
        self.given = tools is not None
        self.schemas: dict[str, dict[str, Any]] = {}
        for tool in tools or ():
            entry = tool_name_and_schema(tool)
            if entry is not None:
                self.schemas.setdefault(*entry)
        self._folded = {name.casefold(): name for name in self.schemas}

    def __bool__(self) -> bool:
        return bool(self.schemas)

    def resolve(self, name: str) -> str | None:
        """The declared name `name` stands for (exact, without a `functions.` prefix, or case-insensitive)."""
        candidates = [name, name.strip()]
        for prefix in ("functions.", "function.", "tools."):
            if name.startswith(prefix):
                candidates.append(name[len(prefix):])
        for candidate in candidates:
            if candidate in self.schemas:
                return candidate
        for candidate in candidates:
            folded = self._folded.get(candidate.casefold())
            if folded is not None:
                return folded
        return None

    def knows(self, name: str) -> bool:
        return self.resolve(name) is not None

    def finish(self, call: ToolCall) -> ToolCall:
        """The call under its declared name, with arguments coerced to the tool's schema."""
        name = self.resolve(call.name)
        if name is None:
            return call  # unknown tools are still calls: Claude Code answers them with an error result
        return ToolCall(name=name, arguments=coerce_arguments(call.arguments, self.schemas[name]))
