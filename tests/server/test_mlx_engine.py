"""The official anthropic SDK against the app on the real MLX engine (tiny random-weight model)."""

from __future__ import annotations

import anthropic
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.live_server import live_server

pytestmark = pytest.mark.mlx
TOKEN = "mlx-token"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    settings = ServerSettings(model=str(tiny_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, context_limit=4096) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0)


def params(*, sampling=None, **overrides):
    """The SDK (2.x) no longer has sampling arguments; they travel as extra body fields, as on the wire."""
    base = dict(model="claude-opus-4-8", max_tokens=24, messages=[{"role": "user", "content": "Write a short greeting."}],
                extra_body=sampling or {"temperature": 0.0})
    base.update(overrides)
    return base


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_create_and_stream_agree_at_temperature_zero(client):
    created = client.messages.create(**params())
    with client.messages.stream(**params()) as stream:
        streamed = stream.get_final_message()
    assert created.stop_reason in ("end_turn", "max_tokens")
    assert created.usage.output_tokens <= 24
    assert (created.stop_reason == "max_tokens") == (created.usage.output_tokens == 24)
    assert text_of(created) == text_of(streamed)
    assert created.usage.output_tokens == streamed.usage.output_tokens


def test_count_tokens_is_the_rendered_prompt(client):
    counted = client.messages.count_tokens(model="claude-opus-4-8", messages=params()["messages"], tools=[BASH_TOOL])
    message = client.messages.create(**params(tools=[BASH_TOOL], max_tokens=4))
    assert counted.input_tokens == message.usage.input_tokens + message.usage.cache_read_input_tokens
    bare = client.messages.count_tokens(model="claude-opus-4-8", messages=params()["messages"])
    assert counted.input_tokens > bare.input_tokens + 20  # the tool schema is in the template


def test_max_tokens_caps_the_reply(client):
    message = client.messages.create(**params(max_tokens=3, sampling={"temperature": 1.0, "top_k": 50, "top_p": 0.9}))
    assert message.usage.output_tokens <= 3


def test_stop_sequence_cuts_real_model_text(client):
    baseline = client.messages.create(**params(max_tokens=40))
    text = text_of(baseline)
    if len(text.strip()) < 6:
        pytest.skip("this random model ended too early to pick a stop sequence")
    stop = text[len(text) // 2:len(text) // 2 + 3]
    cut = client.messages.create(**params(max_tokens=40, stop_sequences=[stop]))
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert stop not in text_of(cut)
    assert text.startswith(text_of(cut).strip()[:3])


def test_tool_history_renders_through_the_chat_template(client):
    history = [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_a", "name": "Bash",
                                           "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "a.txt"}]},
    ]
    message = client.messages.create(**params(tools=[BASH_TOOL], messages=history))
    assert message.stop_reason in ("end_turn", "max_tokens", "tool_use")


def test_models_and_auth(client, server):
    assert "claude" in list(client.models.list())[0].id
    stranger = anthropic.Anthropic(base_url=server.url, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(**params())


def test_bad_input_and_context_limit(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": [{"type": "text"}]}])
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**params(messages=[{"role": "user", "content": " ".join(str(i) for i in range(8000))}]))
    assert caught.value.body["error"]["message"].startswith("prompt is too long:")
