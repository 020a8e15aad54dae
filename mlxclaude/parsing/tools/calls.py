"""Turning parsed JSON (or Python-call) values into ToolCalls, shared by the families."""

from __future__ import annotations

import ast
import re
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.format import as_arguments

# Tool names as Anthropic allows them, plus the dots and colons some templates put in (functions.x, mcp:y).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-/]{0,127}")
ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
# Keys a bare JSON call object may have; any other key means it's some other JSON.
CALL_KEYS = frozenset({"name", "function", "type", "id", "tool", "tool_name", *ARGUMENT_KEYS})


def is_tool_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def call_from_object(obj: Any, *, strict_keys: bool = False) -> ToolCall | None:
    """A call from `{"name", "arguments"|"parameters"}` or `{"type": "function", "function": {...}}`."""
    if not isinstance(obj, dict):
        return None
    if strict_keys and not set(obj) <= CALL_KEYS:
        return None
    function = obj.get("function")
    if isinstance(function, dict) and "name" not in obj:
        return call_from_object(function)
    name = obj.get("name")
    if name is None and isinstance(function, str):
        name = function
    if not isinstance(name, str) or not name.strip():
        return None
    raw_arguments: Any = None
    for key in ARGUMENT_KEYS:
        if key in obj:
            raw_arguments = obj[key]
            break
    arguments = as_arguments(raw_arguments)
    if arguments is None:
        return None
    return ToolCall(name=name.strip(), arguments=arguments)


def calls_from_value(value: Any, *, strict_keys: bool = False) -> list[ToolCall] | None:
    """One call object or a list of them; None unless every element is a call."""
    objects = value if isinstance(value, list) else [value]
    calls = [call_from_object(obj, strict_keys=strict_keys) for obj in objects]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def calls_from_values(values: list[Any], *, strict_keys: bool = False) -> list[ToolCall] | None:
    calls: list[ToolCall] = []
    for value in values:
        parsed = calls_from_value(value, strict_keys=strict_keys)
        if parsed is None:
            return None
        calls += parsed
    return calls or None


class _JsonLiterals(ast.NodeTransformer):
    """Models mix JSON literals into Python calls: read true/false/null as Python would mean them."""

    VALUES = {"true": True, "false": False, "null": None}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.VALUES:
            return ast.copy_location(ast.Constant(self.VALUES[node.id]), node)
        return node


def python_literal(text: str) -> Any:
    """A Python/JSON literal (dict, list, str, number, True/true…); raises ValueError when it isn't one."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return ast.literal_eval(_JsonLiterals().visit(tree).body)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ValueError(str(exc)) from exc


def _call_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _call_name(node.value)
        return f"{parent}.{node.attr}" if parent else None
    return None


def parse_python_calls(text: str) -> list[ToolCall] | None:
    """`name(a=1, b="x")`, several on separate lines or in a list `[f(a=1), g()]`; keyword arguments only."""
    source = text.strip()
    if not source:
        return None
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    nodes: list[ast.expr] = []
    for statement in tree.body:
        if not isinstance(statement, ast.Expr):
            return None
        value = statement.value
        nodes += value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    calls: list[ToolCall] = []
    for node in nodes:
        if not isinstance(node, ast.Call) or node.args:
            return None
        name = _call_name(node.func)
        if name is None:
            return None
        arguments: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return None
            try:
                arguments[keyword.arg] = ast.literal_eval(_JsonLiterals().visit(keyword.value))
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None
        calls.append(ToolCall(name=name, arguments=arguments))
    return calls or None


def python_call_text(call: ToolCall) -> str:
    """`name(a="x", b=2)`: JSON values, which Python (and the parser above) read back the same."""
    import json

    arguments = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in call.arguments.items())
    return f"{call.name}({arguments})"


def parse_json_calls(body: str) -> list[ToolCall] | None:
    """Strict: one call object, a list of them, or several objects in a row; nothing else in the body."""
    from mlxclaude.parsing.tools.scan import parse_json_sequence

    values, rest = parse_json_sequence(body, separators="")
    if rest or not values:
        return None
    return calls_from_values(values)


def repair_json_calls(body: str) -> list[ToolCall] | None:
    """Lenient: the calls in a JSON body after `repair_json` (trailing garbage, a cut-off last call…)."""
    from mlxclaude.parsing.tools.repair import repair_json
    from mlxclaude.parsing.tools.scan import parse_json_sequence

    values, rest = parse_json_sequence(body.strip(), separators=";,")
    if rest:
        repaired = repair_json(rest)
        if repaired is not None:
            values.append(repaired)
        elif not values or rest[0] in "{[":
            return None  # nothing parsed, or a call that can't be recovered: not garbage to drop
    return calls_from_values(values) if values else None
