"""The format for models whose chat template has no tool support (SmolLM2, Llama 3.0, Phi…).

Tools are described in a "# Tools" section of the system message, calls use the Hermes markup
(`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, the shape most small models have seen),
and history is rendered as text: calls in the assistant's content, results as
`<tool_response name="…">…</tool_response>` in a user turn.
"""

from __future__ import annotations

import json
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.catalog import tool_name_and_schema
from mlxclaude.parsing.tools.format import ToolFormat
from mlxclaude.parsing.tools.hermes import parse_tool_call_tag

GENERIC_OPEN, GENERIC_CLOSE = "<tool_call>", "</tool_call>"


def _description(tool: Any) -> str:
    function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    description = function.get("description") or ""
    return description.strip() if isinstance(description, str) else ""


def tool_listing(tools: list[dict]) -> str:
    """One `## name` entry per tool: its description and its arguments' JSON schema (compact, stable)."""
    entries = []
    for tool in tools:
        entry = tool_name_and_schema(tool) if isinstance(tool, dict) else None
        if entry is None:
            continue
        name, schema = entry
        lines = [f"## {name}"]
        if description := _description(tool):
            lines.append(description)
        lines.append("Arguments (JSON schema): " + json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
        entries.append("\n".join(lines))
    return "\n\n".join(entries)


_PLACEHOLDERS: dict[str, Any] = {"string": "...", "integer": 1, "number": 1, "boolean": True,
                                 "array": [], "object": {}, "null": None}


def example_arguments(tools: list[dict]) -> tuple[str, dict[str, Any]]:
    """A call to the first tool with a placeholder for each required argument (for the prompt's example)."""
    for tool in tools:
        entry = tool_name_and_schema(tool) if isinstance(tool, dict) else None
        if entry is None:
            continue
        name, schema = entry
        properties: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        required = [key for key in schema.get("required") or [] if key in properties] or list(properties)[:1]
        arguments: dict[str, Any] = {}
        for key in required:
            prop: dict[str, Any] = properties[key] if isinstance(properties.get(key), dict) else {}
            kind = prop.get("type")
            kind = kind[0] if isinstance(kind, list) and kind else kind
            enum = prop.get("enum")
            placeholder = _PLACEHOLDERS.get(kind, "...") if isinstance(kind, str) else "..."
            arguments[key] = enum[0] if isinstance(enum, list) and enum else placeholder
        return name, arguments
    return "tool_name", {"argument": "value"}


def render_generic(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{GENERIC_OPEN}\n{body}\n{GENERIC_CLOSE}"


def render_generic_result(content: str, name: str | None = None) -> str:
    attribute = f" name={json.dumps(name, ensure_ascii=False)}" if name else ""
    return f"<tool_response{attribute}>\n{content}\n</tool_response>"


def generic_tool_system_prompt(tools: list[dict]) -> str:
    """The "# Tools" section: every tool's name, description and JSON schema, and the call format."""
    name, arguments = example_arguments(tools)
    return (
        "# Tools\n\n"
        "You can call the following tools. Each is listed with its description and the JSON schema of its "
        "arguments.\n\n"
        + tool_listing(tools)
        + "\n\nTo call a tool, write a JSON object with the tool's name and its arguments inside "
        "<tool_call></tool_call> tags, one block per call, and stop after the last one:\n"
        + render_generic(ToolCall(name, arguments))
        + "\nEach result comes back in a <tool_response> block. Call a tool only when you need it; "
        "otherwise answer directly."
    )


GENERIC = ToolFormat(
    GENERIC_OPEN,
    GENERIC_CLOSE,
    parse_tool_call_tag,
    name="generic",
    bare="reply",
    render_call=render_generic,
    render_result=render_generic_result,
    system_prompt=generic_tool_system_prompt,
    prompted=True,
    native_history=False,
    detect=lambda template: True,
)


