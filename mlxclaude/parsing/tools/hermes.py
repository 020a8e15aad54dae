"""Hermes-style tool calls (Qwen2.5, Qwen3, Hermes): `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`."""

from __future__ import annotations

import json
from typing import Any

from mlxclaude.parsing.events import ToolCall


def parse_hermes(body: str) -> list[ToolCall] | None:
    """Parse the JSON between the tags; one call object or a list of them. None if it isn't a valid call."""
    try:
        payload, end = json.JSONDecoder().raw_decode(body.strip())
    except json.JSONDecodeError:
        return None
    if body.strip()[end:].strip():
        return None
    objects = payload if isinstance(payload, list) else [payload]
    calls = [_to_tool_call(obj) for obj in objects]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _to_tool_call(obj: Any) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(name=name, arguments=arguments)
