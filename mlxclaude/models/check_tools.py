"""The tools `models check` prompts with, and the small JSON-schema check it validates calls against
(the subset tool definitions use: type / required / properties / enum / items)."""

from __future__ import annotations

from typing import Any, Callable


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}


CLAUDE_CODE_TOOLS = [
    _function("Bash", "Executes a given bash command and returns its output.", {
        "command": {"type": "string", "description": "The command to execute"},
        "description": {"type": "string", "description": "Clear, concise description of what this command does"},
        "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
        "run_in_background": {"type": "boolean", "description": "Run this command in the background"},
    }, ["command"]),
    _function("Read", "Reads a file from the local filesystem.", {
        "file_path": {"type": "string", "description": "The absolute path to the file to read"},
        "offset": {"type": "number", "description": "The line number to start reading from"},
        "limit": {"type": "number", "description": "The number of lines to read"},
    }, ["file_path"]),
]
WEATHER_TOOL = _function("get_weather", "Get the current weather in a city.", {
    "city": {"type": "string", "description": "The city name, e.g. Paris"},
}, ["city"])

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def schema_errors(value: Any, schema: dict[str, Any], where: str = "arguments") -> list[str]:
    """What's wrong with `value` under the subset of JSON Schema tool definitions use; [] when valid."""
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_JSON_TYPES.get(t, lambda v: True)(value) for t in types):
            return [f"{where} should be {'/'.join(types)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} should be one of {schema['enum']}"]
    errors: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        errors += [f"{where} misses required '{key}'" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where} has unexpected '{key}'")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    return errors
