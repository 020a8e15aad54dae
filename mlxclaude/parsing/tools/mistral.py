"""Mistral tool calls; they run to the end of the reply (Mistral has no end-of-call token).

    [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]   v3 / v7
    [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}                                             v11+ (Devstral, Small 3.2)
    [TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}

Several calls: a longer list, or `[TOOL_CALLS]` again before each one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import calls_from_values, is_tool_name
from mlxclaude.parsing.tools.format import ToolFormat, as_arguments
from mlxclaude.parsing.tools.repair import repair_json
from mlxclaude.parsing.tools.scan import parse_json_sequence

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
_HEADER = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.:\-/]*)\s*(?:\[CALL_ID\]\s*[A-Za-z0-9_\-]*\s*)?\[ARGS\]\s*")
END_TOKENS = ("</s>",)


def _parts(body: str) -> list[str]:
    text = body.strip()
    for token in END_TOKENS:
        if text.endswith(token):
            text = text[: -len(token)].rstrip()
    return [part.strip() for part in text.split(TOOL_CALLS) if part.strip()]


def _parse(body: str, *, lenient: bool) -> list[ToolCall] | None:
    parts = _parts(body)
    calls: list[ToolCall] = []
    for part in parts:
        parsed = _json_part(part, lenient) if part[:1] in ("[", "{") else _header_part(part, lenient)
        if parsed is None:
            return None
        calls += parsed
    return calls or None


def _json_part(part: str, lenient: bool) -> list[ToolCall] | None:
    values, rest = parse_json_sequence(part, separators=",;")
    if rest:
        if not lenient:
            return None
        repaired = repair_json(rest)
        if repaired is None and (not values or rest[0] in "[{"):
            return None
        if repaired is not None:
            values.append(repaired)
    return calls_from_values(values) if values else None


def _header_part(part: str, lenient: bool) -> list[ToolCall] | None:
    """`name[ARGS]{...}`, possibly repeated without `[TOOL_CALLS]` between them."""
    calls: list[ToolCall] = []
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(part):
        match = _HEADER.match(part, pos)
        if match is None or not is_tool_name(match.group(1)):
            if calls and lenient:
                break  # trailing garbage after complete calls
            return None
        pos = match.end()
        arguments: Any
        try:
            arguments, pos = decoder.raw_decode(part, pos)
        except (json.JSONDecodeError, RecursionError):
            if not lenient:
                return None
            arguments, pos = repair_json(part[pos:]), len(part)
            if arguments is None:
                return None  # cut inside a value
        arguments = as_arguments(arguments) if not isinstance(arguments, dict) else arguments
        if arguments is None:
            return None
        calls.append(ToolCall(match.group(1), arguments))
        while pos < len(part) and part[pos].isspace():
            pos += 1
    return calls or None


def parse_mistral(body: str) -> list[ToolCall] | None:
    return _parse(body, lenient=False)


def repair_mistral(body: str) -> list[ToolCall] | None:
    return _parse(body, lenient=True)


def render_mistral(call: ToolCall) -> str:
    return f"{TOOL_CALLS}{call.name}{ARGS}{json.dumps(call.arguments, ensure_ascii=False)}"


MISTRAL = ToolFormat(
    TOOL_CALLS,
    "",
    parse_mistral,
    name="mistral",
    render_call=render_mistral,
    repair=repair_mistral,
    template_markers=(TOOL_CALLS,),
)
