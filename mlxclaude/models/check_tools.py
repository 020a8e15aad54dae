"""The tool-call probe of `models check`: the tools it prompts with, one get_weather request through
the backend (constrained decoding on or off), and the small JSON-schema check it validates calls
against (the subset tool definitions use: type / required / properties / enum / items)."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools import ToolFormat
from mlxclaude.protocol.chat import ChatRequest, Sampling, ToolChoice

TOOL_CALL_TOKENS = 128


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


def one_line(text: object, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def snippet(text: str, limit: int = 60) -> str:
    return json.dumps(one_line(text, limit), ensure_ascii=False)


def run_chat(backend: Any, chat: ChatRequest, on_text: Callable[[str, threading.Event], None] | None = None):
    """(prompt, the reply's text, its GenerationStats) for one request through the backend."""
    prompt = backend.render(chat)
    cancel = threading.Event()
    pieces, stats = [], None
    for item in backend.generate(prompt, chat, chat.max_tokens, cancel):
        if isinstance(item, str):
            pieces.append(item)
            if on_text:
                on_text(item, cancel)
        else:
            stats = item
    return prompt, "".join(pieces), stats


def tool_call_example(backend: Any, model: str, fmt: ToolFormat) -> str:
    """How this model's own template writes a get_weather call; a Hermes-style body if it won't say."""
    from mlxclaude.engine.render import RenderError

    arguments = {"city": "Lisbon"}
    try:
        text = backend.render(ChatRequest(model=model, tools=[WEATHER_TOOL], messages=[
            {"role": "user", "content": "What's the weather in Lisbon?"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "call_1", "function": {
                "name": "get_weather", "arguments": arguments}}]}])).text
        start = text.rfind(fmt.open)
        end = text.find(fmt.close, start + len(fmt.open)) if start >= 0 else -1
        if end >= 0 and fmt.parse(text[start + len(fmt.open):end]):
            return text[start:end + len(fmt.close)]
    except RenderError:
        pass
    return fmt.render(ToolCall("get_weather", arguments))


def tool_call_attempt(backend: Any, model: str, fmt: ToolFormat, example: str, choice: ToolChoice,
                      constrained: bool) -> tuple[Optional[ToolCall], list[str], str]:
    """One get_weather request; (the first call or None, what's wrong with it, the raw text)."""
    from mlxclaude.parsing.reply import ReplyParser

    chat = ChatRequest(
        model=model, tools=[WEATHER_TOOL], thinking="disabled", sampling=Sampling(temperature=0.0),
        max_tokens=TOOL_CALL_TOKENS, tool_choice=choice,
        messages=[{"role": "system", "content": "You are a tool-calling assistant. To call get_weather, reply "
                                                "with only the call, in exactly this format and nothing else:\n"
                                                + example},
                  {"role": "user", "content": "What is the weather in Tokyo right now? Use the get_weather tool."}])
    info = backend.info
    prompt = backend.render(chat)
    parser = ReplyParser(emit_thinking=False, starts_in_thinking=prompt.starts_in_thinking,
                         think_open=info.think_open or "<think>", think_close=info.think_close or "</think>",
                         tool_format=fmt, tools=chat.tools)
    events: list = []

    def on_text(piece: str, cancel: threading.Event) -> None:
        events.extend(parser.feed(piece))
        if any(isinstance(event, ToolCall) for event in events):
            cancel.set()  # one call is all we need

    constraints = getattr(backend, "constraints", None)
    enabled = constraints.enabled if constraints is not None else None
    if constraints is not None:
        constraints.enabled = constrained
    try:
        _, text, _ = run_chat(backend, chat, on_text)
    finally:
        if constraints is not None:
            constraints.enabled = enabled
    events.extend(parser.finish())
    calls = [event for event in events if isinstance(event, ToolCall)]
    if not calls:
        return None, [f"no {fmt.name} call in {snippet(text, 50)}"], text
    call = calls[0]
    schema = WEATHER_TOOL["function"]["parameters"]
    problems = [f"called {call.name!r}, not 'get_weather'"] if call.name != "get_weather" else \
        schema_errors(call.arguments, schema)
    return call, problems, text
