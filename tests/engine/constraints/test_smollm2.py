"""Forced tool calls on a real model: SmolLM2-135M-Instruct (no tool support in its template, so the
generic format) through the real server and the anthropic SDK. mlx on CPU is slow here, so the tools
are Claude Code's Bash and Read schemas with their descriptions cut, and max_tokens is small."""

from __future__ import annotations

import anthropic
import jsonschema
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.live_server import live_server

pytestmark = pytest.mark.mlx
TOKEN = "smollm2-token"


def trimmed(schema):
    if isinstance(schema, dict):
        return {key: trimmed(value) for key, value in schema.items() if key not in ("description", "$schema")}
    return schema


@pytest.fixture(scope="module")
def tools(cc_tools) -> list[dict]:
    return [{"name": t["function"]["name"], "description": t["function"]["description"].split("\n")[0][:100],
             "input_schema": trimmed(t["function"]["parameters"])}
            for t in cc_tools if t["function"]["name"] in ("Bash", "Read")]


@pytest.fixture(scope="module")
def client(smollm2_model_dir):
    settings = ServerSettings(model=str(smollm2_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, context_limit=4096) as live:
        yield anthropic.Anthropic(base_url=live.url, api_key=TOKEN, max_retries=0, timeout=600)


@pytest.mark.parametrize("prompt, choice", [
    ("List the files in this directory.", {"type": "tool", "name": "Bash"}),
    ("Show me what is in README.md.", {"type": "tool", "name": "Read"}),
    ("What Python version is installed?", {"type": "any"}),
])
def test_forced_calls_are_valid_tool_uses(client, tools, prompt, choice):
    message = client.messages.create(model="claude-opus-4-8", max_tokens=48, tools=tools, tool_choice=choice,
                                     messages=[{"role": "user", "content": prompt}], extra_body={"temperature": 0.0})
    assert message.stop_reason == "tool_use", message
    assert [block.type for block in message.content] == ["tool_use"] * len(message.content)
    for block in message.content:
        if choice["type"] == "tool":
            assert block.name == choice["name"]
        schema = next(tool["input_schema"] for tool in tools if tool["name"] == block.name)
        jsonschema.validate(block.input, schema)
