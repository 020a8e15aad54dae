"""GLM-4.5 / 4.6 / 4.7 tool calls.

    <tool_call>NAME
    <arg_key>k</arg_key>
    <arg_value>v</arg_value>
    </tool_call>

(4.7 writes it without the newlines.) Values are raw text: the template writes strings as they are
and everything else as JSON, so the request's schemas turn them back (see coerce.py).
"""

from __future__ import annotations

from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import is_tool_name, parse_json_calls, python_literal
from mlxclaude.parsing.tools.format import ToolFormat

KEY_OPEN, KEY_CLOSE = "<arg_key>", "</arg_key>"
VALUE_OPEN, VALUE_CLOSE = "<arg_value>", "</arg_value>"


def parse_glm_arguments(body: str) -> list[ToolCall] | None:
    """`NAME <arg_key>…</arg_key><arg_value>…</arg_value>…`; needs at least one argument."""
    first = body.find(KEY_OPEN)
    if first < 0:
        return None
    name = body[:first].strip()
    if not is_tool_name(name):
        return None
    arguments: dict[str, Any] = {}
    pos = first
    while True:
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos >= len(body):
            return [ToolCall(name, arguments)]
        if not body.startswith(KEY_OPEN, pos):
            return None
        key_end = body.find(KEY_CLOSE, pos)
        if key_end < 0:
            return None
        key = body[pos + len(KEY_OPEN) : key_end].strip()
        pos = key_end + len(KEY_CLOSE)
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if not key or not body.startswith(VALUE_OPEN, pos):
            return None
        value_end = body.find(VALUE_CLOSE, pos)
        if value_end < 0:
            return None  # cut inside a value
        arguments[key] = body[pos + len(VALUE_OPEN) : value_end]
        pos = value_end + len(VALUE_CLOSE)


def parse_glm(body: str) -> list[ToolCall] | None:
    """The arg_key form; a lone name (a call without arguments); `NAME\\n{json}`; or Hermes JSON."""
    if KEY_OPEN in body:
        return parse_glm_arguments(body)
    text = body.strip()
    if text[:1] in ("{", "["):
        return parse_json_calls(text)
    name, _, rest = text.partition("\n")
    name = name.strip()
    if not is_tool_name(name):
        return None
    if not rest.strip():
        return [ToolCall(name, {})]
    try:
        arguments = python_literal(rest)
    except ValueError:
        return None
    return [ToolCall(name, arguments)] if isinstance(arguments, dict) else None


def render_glm(call: ToolCall) -> str:
    import json

    parts = [f"<tool_call>{call.name}"]
    for key, value in call.arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{KEY_OPEN}{key}{KEY_CLOSE}\n{VALUE_OPEN}{text}{VALUE_CLOSE}")
    return "\n".join(parts) + "\n</tool_call>"


GLM = ToolFormat(
    "<tool_call>",
    "</tool_call>",
    parse_glm,
    name="glm",
    render_call=render_glm,
    template_markers=("<arg_key>",),
)
