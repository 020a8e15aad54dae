"""Llama 3.1 / 3.2 / 3.3 JSON tool calls.

    {"name": "get_weather", "parameters": {"city": "Paris"}}

written bare (usually the whole reply) or after `<|python_tag|>`; several are separated by `;`.
A `<|python_tag|>` call runs to the end of the reply. A bare one counts at the start of the reply or
of a line, and only with the keys of a call (and, when the request's tools are known, a known name).
"""

from __future__ import annotations

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import calls_from_values, parse_python_calls, repair_json_calls
from mlxclaude.parsing.tools.format import ToolFormat
from mlxclaude.parsing.tools.scan import parse_json_sequence

PYTHON_TAG = "<|python_tag|>"
END_TOKENS = ("<|eom_id|>", "<|eot_id|>")


def _strip_end_tokens(body: str) -> str:
    text = body.strip()
    for token in END_TOKENS:
        if text.endswith(token):
            text = text[: -len(token)].rstrip()
    return text


def parse_llama3(body: str) -> list[ToolCall] | None:
    """JSON call objects separated by `;` (or a Python-style builtin call `brave_search.call(query="x")`)."""
    text = _strip_end_tokens(body)
    if text.startswith(PYTHON_TAG):
        text = text[len(PYTHON_TAG) :].lstrip()
    if text[:1] in ("{", "["):
        values, rest = parse_json_sequence(text, separators=";,")
        return None if rest or not values else calls_from_values(values)
    return parse_python_calls(text)


def repair_llama3(body: str) -> list[ToolCall] | None:
    return repair_json_calls(_strip_end_tokens(body))


def render_llama3(call: ToolCall) -> str:
    import json

    return json.dumps({"name": call.name, "parameters": call.arguments}, ensure_ascii=False)


def _uses_llama3_tools(template: str) -> bool:
    return "<|start_header_id|>" in template and any(
        needle in template for needle in (PYTHON_TAG, "ipython", '"parameters": ')
    )


LLAMA3 = ToolFormat(
    PYTHON_TAG,
    "",
    parse_llama3,
    name="llama3",
    bare="line",
    render_call=render_llama3,
    repair=repair_llama3,
    detect=_uses_llama3_tools,
)
