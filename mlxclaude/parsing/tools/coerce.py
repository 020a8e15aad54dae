"""Bring tool-call arguments to the types their JSON schema asks for.

XML-ish formats (Qwen3-Coder, GLM) always give strings, and small models write "5" for 5 or a JSON
array as a string. A value is converted only when the schema says which type it should be and the
conversion is exact; anything else (unknown properties, values that don't convert, odd schemas) is
left as it was. Never raises.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from mlxclaude.parsing.tools.calls import python_literal

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MAX_DEPTH = 32


def coerce_arguments(arguments: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """`arguments` with each property coerced to its schema; the input dict is not modified."""
    if not isinstance(arguments, dict) or not isinstance(schema, dict):
        return arguments
    try:
        coerced = _coerce(arguments, schema, 0)
    except Exception:  # a schema we didn't foresee must never cost the call
        return arguments
    return coerced if isinstance(coerced, dict) else arguments


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    if "enum" in schema and isinstance(schema["enum"], list):
        return sorted({_json_type(value) for value in schema["enum"]})
    if "const" in schema:
        return [_json_type(schema["const"])]
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(value: Any, kind: str) -> bool:
    actual = _json_type(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            return [option for option in options if isinstance(option, dict)]
    return []


def _coerce(value: Any, schema: dict[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(schema, dict):
        return value
    options = _alternatives(schema)
    if options:
        return _coerce_any_of(value, options, depth)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        for option in enum:  # "3" for an enum holding 3
            if isinstance(value, str) and not isinstance(option, str) and json.dumps(option) == value.strip():
                return option
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        return _coerce(value, all_of[0], depth + 1)
    types = _types(schema)
    if not types:
        return value
    if not any(_matches(value, kind) for kind in types):
        value = _convert(value, types)
    if isinstance(value, dict) and "object" in types:
        return _coerce_object(value, schema, depth)
    if isinstance(value, list) and "array" in types:
        return _coerce_array(value, schema, depth)
    if isinstance(value, float) and "integer" in types and "number" not in types and value.is_integer():
        return int(value)
    return value


def _coerce_any_of(value: Any, options: list[dict[str, Any]], depth: int) -> Any:
    for option in options:  # already one of the alternatives: only coerce inside it
        if any(_matches(value, kind) for kind in _types(option)):
            return _coerce(value, option, depth + 1)
    for option in options:
        converted = _coerce(value, option, depth + 1)
        if converted is not value and any(_matches(converted, kind) for kind in _types(option)):
            return converted
    return value


def _coerce_object(value: dict[str, Any], schema: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    extra = schema.get("additionalProperties")
    result: dict[str, Any] = {}
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        result[key] = _coerce(item, sub, depth + 1) if isinstance(sub, dict) else item
    return result


def _coerce_array(value: list[Any], schema: dict[str, Any], depth: int) -> list[Any]:
    items = schema.get("items")
    if isinstance(items, dict):
        return [_coerce(item, items, depth + 1) for item in value]
    if isinstance(items, list):  # tuple form
        return [_coerce(item, sub, depth + 1) if isinstance(sub, dict) else item
                for item, sub in zip(value, items)] + value[len(items):]
    return value


def _convert(value: Any, types: list[str]) -> Any:
    """`value` as the first of `types` it converts to exactly; `value` itself when none does."""
    for kind in types:
        converted = _CONVERTERS.get(kind, _no_conversion)(value)
        if converted is not _FAILED:
            return converted
    return value


_FAILED = object()


def _no_conversion(value: Any) -> Any:
    return _FAILED


def _numeric_text(value: Any) -> Any:
    """A string holding a finite number as int or float; _FAILED for anything else."""
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
    return _FAILED


def _to_integer(value: Any) -> Any:
    number = value if isinstance(value, float) else _numeric_text(value)
    if isinstance(number, float):
        return int(number) if number.is_integer() else _FAILED
    return number


def _to_number(value: Any) -> Any:
    return _numeric_text(value)


def _to_boolean(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    return _FAILED


def _to_null(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("null", "none"):
        return None
    return _FAILED


def _to_string(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return _FAILED


def _parse_structured(value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return _FAILED
    text = value.strip()
    if not text or text[0] not in "[{":
        return _FAILED
    try:
        parsed = json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError):
        try:
            parsed = python_literal(text)
        except ValueError:
            return _FAILED
    return parsed if isinstance(parsed, kind) else _FAILED


_CONVERTERS = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "null": _to_null,
    "string": _to_string,
    "array": lambda value: _parse_structured(value, list),
    "object": lambda value: _parse_structured(value, dict),
}
