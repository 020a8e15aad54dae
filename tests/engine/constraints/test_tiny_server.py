"""tool_choice and JSON output through the real server, the anthropic SDK and the real MLX engine.

The tiny model has random weights: left alone it never writes a valid call, so every valid tool_use
here is the constraints' doing.
"""

from __future__ import annotations

import json

import anthropic
import jsonschema
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.live_server import live_server

pytestmark = pytest.mark.mlx
TOKEN = "constraints-token"
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {
               "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
               "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"],
               "additionalProperties": False}}
TODO = {"name": "todo", "description": "Write the todo list",
        "input_schema": {"type": "object", "properties": {"todos": {"type": "array", "minItems": 1, "items": {
            "type": "object", "properties": {"content": {"type": "string"}, "done": {"type": "boolean"},
                                             "priority": {"type": "number"}},
            "required": ["content", "done"], "additionalProperties": False}}},
            "required": ["todos"], "additionalProperties": False}}
MAX_TOKENS = 96  # a random model fills strings until the constraint starts closing the call


def to_anthropic(tools: list[dict]) -> list[dict]:
    return [{"name": t["function"]["name"], "description": t["function"].get("description", "")[:200],
             "input_schema": t["function"]["parameters"]} for t in tools]


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    settings = ServerSettings(model=str(tiny_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, context_limit=8192) as live:
        yield anthropic.Anthropic(base_url=live.url, api_key=TOKEN, max_retries=0)


@pytest.fixture(scope="module")
def cc(cc_tools) -> list[dict]:
    return to_anthropic(cc_tools)


def ask(client, tools, tool_choice=None, max_tokens=MAX_TOKENS, content="Do the task.", **extra):
    params = dict(model="claude-opus-4-8", max_tokens=max_tokens, tools=tools,
                  messages=[{"role": "user", "content": content}], extra_body={"temperature": 1.0, **extra})
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    return client.messages.create(**params)


def schema_of(tools, name):
    return next(tool["input_schema"] for tool in tools if tool["name"] == name)


def assert_only_valid_calls(message, tools, name=None):
    assert message.stop_reason == "tool_use", message
    assert message.content and all(block.type == "tool_use" for block in message.content), message.content
    for block in message.content:
        assert name is None or block.name == name
        jsonschema.validate(block.input, schema_of(tools, block.name))


@pytest.mark.parametrize("name", ["Bash", "Read", "Edit", "Write", "Grep", "Glob"])
def test_tool_choice_tool_forces_a_valid_claude_code_call(client, cc, name):
    assert_only_valid_calls(ask(client, cc, {"type": "tool", "name": name}), cc, name)


@pytest.mark.parametrize("tool", [WEATHER, TODO], ids=["enum-int-range", "array-of-objects"])
def test_tool_choice_tool_with_other_schemas(client, tool, cc):
    tools = [tool, *cc[:2]]
    assert_only_valid_calls(ask(client, tools, {"type": "tool", "name": tool["name"]}), tools, tool["name"])


def test_tool_choice_any_calls_some_tool_and_nothing_else(client, cc):
    tools = [WEATHER, *cc]
    for _ in range(3):
        assert_only_valid_calls(ask(client, tools, {"type": "any"}), tools)


def test_disable_parallel_tool_use_gives_exactly_one_call(client, cc):
    for _ in range(2):
        message = ask(client, cc, {"type": "any", "disable_parallel_tool_use": True}, max_tokens=120)
        assert_only_valid_calls(message, cc)
        assert len(message.content) == 1


def test_tool_choice_none_never_calls(client, cc):
    for _ in range(4):
        message = ask(client, [WEATHER, *cc], {"type": "none"}, max_tokens=40)
        assert all(block.type == "text" for block in message.content), message.content
        assert message.stop_reason in ("end_turn", "max_tokens")
        assert "<tool_call>" not in "".join(block.text for block in message.content)


def test_auto_calls_that_do_open_are_valid(client, cc):
    for _ in range(4):
        message = ask(client, cc, max_tokens=40)
        for block in message.content:
            if block.type == "tool_use":
                jsonschema.validate(block.input, schema_of(cc, block.name))


def test_json_schema_output_parses_and_validates(client):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    for _ in range(2):
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=48, messages=[{"role": "user", "content": "Name this session."}],
            extra_body={"temperature": 1.0, "output_config": {"format": {"type": "json_schema", "schema": schema}}})
        text = "".join(block.text for block in message.content if block.type == "text")
        jsonschema.validate(json.loads(text), schema)


def test_streamed_input_json_deltas_add_up_to_the_input(client, cc):
    with client.messages.stream(model="claude-opus-4-8", max_tokens=MAX_TOKENS, tools=cc,
                                tool_choice={"type": "tool", "name": "Edit"},
                                messages=[{"role": "user", "content": "Fix the typo."}],
                                extra_body={"temperature": 1.0}) as stream:
        partial = "".join(event.delta.partial_json for event in stream
                          if event.type == "content_block_delta" and event.delta.type == "input_json_delta")
        final = stream.get_final_message()
    assert_only_valid_calls(final, cc, "Edit")
    assert json.loads(partial) == final.content[0].input


def test_a_call_cut_by_max_tokens_is_repaired_or_returned_never_an_error(client, cc):
    for max_tokens in (3, 9, 16):
        message = ask(client, cc, {"type": "tool", "name": "Edit"}, max_tokens=max_tokens)
        assert message.usage.output_tokens <= max_tokens
        for block in message.content:
            assert block.type in ("tool_use", "text")
            if block.type == "tool_use":
                assert block.name == "Edit" and isinstance(block.input, dict)
