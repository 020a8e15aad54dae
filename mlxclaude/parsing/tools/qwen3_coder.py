"""Qwen3-Coder (and Qwen3.5) XML tool calls.

    <tool_call>
    <function=NAME>
    <parameter=P>
    value
    </parameter>
    </function>
    </tool_call>

Also without the outer `<tool_call>` wrapper. Values are raw text (one newline trimmed at each end);
the request's schemas turn them into numbers, booleans, arrays… (see coerce.py).
"""

from __future__ import annotations

from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import is_tool_name, parse_json_calls
from mlxclaude.parsing.tools.format import CallMarker, ToolFormat

FUNCTION_OPEN, FUNCTION_CLOSE = "<function=", "</function>"
PARAMETER_OPEN, PARAMETER_CLOSE = "<parameter=", "</parameter>"


def parse_qwen3_coder_xml(body: str) -> list[ToolCall] | None:
    """One or more `<function=…>` blocks; the last may lack `</function>` when all its parameters closed."""
    text = body.strip()
    calls: list[ToolCall] = []
    pos = 0
    while pos < len(text):
        start = text.find(FUNCTION_OPEN, pos)
        if start < 0 or text[pos:start].strip():
            return None
        parsed = _function(text, start + len(FUNCTION_OPEN))
        if parsed is None:
            return None
        call, pos, closed = parsed
        calls.append(call)
        if not closed:
            break
    if text[pos:].strip():
        return None
    return calls or None


def _function(text: str, pos: int) -> tuple[ToolCall, int, bool] | None:
    name_end = text.find(">", pos)
    if name_end < 0:
        return None
    name = text[pos:name_end].strip()
    if not is_tool_name(name):
        return None
    arguments: dict[str, Any] = {}
    pos = name_end + 1
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return ToolCall(name, arguments), pos, False  # cut after a complete parameter
        if text.startswith(FUNCTION_CLOSE, pos):
            return ToolCall(name, arguments), pos + len(FUNCTION_CLOSE), True
        if not text.startswith(PARAMETER_OPEN, pos):
            return None
        key_end = text.find(">", pos)
        value_end = text.find(PARAMETER_CLOSE, key_end + 1) if key_end >= 0 else -1
        if value_end < 0:
            return None  # cut inside a value: the value would be truncated
        key = text[pos + len(PARAMETER_OPEN) : key_end].strip()
        if not key:
            return None
        arguments[key] = _trim_one_newline(text[key_end + 1 : value_end])
        pos = value_end + len(PARAMETER_CLOSE)


def _trim_one_newline(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def parse_qwen3_coder(body: str) -> list[ToolCall] | None:
    """The XML form, or the Hermes JSON form some Qwen3-Coder replies fall back to."""
    if FUNCTION_OPEN in body:
        return parse_qwen3_coder_xml(body)
    return parse_json_calls(body)


def render_qwen3_coder(call: ToolCall) -> str:
    import json

    lines = ["<tool_call>", f"<function={call.name}>"]
    for key, value in call.arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += [f"<parameter={key}>", text, PARAMETER_CLOSE]
    return "\n".join([*lines, FUNCTION_CLOSE, "</tool_call>"])


QWEN3_CODER = ToolFormat(
    "<tool_call>",
    "</tool_call>",
    parse_qwen3_coder,
    name="qwen3_coder",
    extra_markers=(CallMarker(FUNCTION_OPEN, FUNCTION_CLOSE, parse_qwen3_coder_xml, keep_open=True, body_kind="xml"),),
    render_call=render_qwen3_coder,
    template_markers=("<function=", "<parameter="),
)
