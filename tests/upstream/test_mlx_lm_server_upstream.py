"""A real OpenAI-compatible engine as the upstream: mlx_lm.server on the tiny model, behind our server, driven by
the official SDK; then the upstream is killed and its requests fall back to the local model."""

from __future__ import annotations

import tomllib

import anthropic
import httpx
import pytest

from mlxclaude.routing.config import parse_routing
from support.live_server import live_server
from support.mlx_lm_server import MlxLmServer
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.mlx
TOKEN = "test-token"


@pytest.fixture(scope="module")
def upstream(tiny_model_dir, tmp_path_factory):
    server = MlxLmServer(tiny_model_dir, tmp_path_factory.mktemp("mlx-lm") / "server.log").start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def routed(upstream):
    toml = (f'[backends.gpu]\nkind = "openai"\nurl = "{upstream.url}/v1"\nmodel = "default_model"\n'
            f'cooldown_after = 1\n'
            f'[routes]\n"*haiku*" = "gpu"\n"*" = "local"\n[fallbacks]\ngpu = ["local"]\n')
    backend = ScriptedBackend(lambda chat: "from local", name="local-model")
    routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
    with live_server(lambda: backend, routing=routing, auth_token=TOKEN) as server:
        yield server


def client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0)


def ask(**overrides) -> dict:
    params = dict(model="claude-haiku-4-5", max_tokens=12, extra_body={"temperature": 0.0},
                  messages=[{"role": "user", "content": "Say something."}])
    return {**params, **overrides}


def test_text_streamed_and_not_agree_and_carry_usage(routed):
    whole = client(routed).messages.create(**ask())
    with client(routed).messages.stream(**ask()) as stream:
        streamed = stream.get_final_message()
    assert whole.content and whole.content[0].type == "text" and whole.content[0].text != "from local"
    assert streamed.content[0].text == whole.content[0].text  # greedy: the same words both ways
    assert whole.stop_reason in ("end_turn", "max_tokens") and 0 < whole.usage.output_tokens <= 12
    assert whole.usage.input_tokens > 0
    assert streamed.usage.cache_read_input_tokens > 0  # mlx_lm.server's prompt cache, reported as ours is
    assert client(routed).messages.create(**ask(model="claude-sonnet-4-5")).content[0].text == "from local"


def test_the_openai_front_doors_reach_the_remote_engine_too(routed):
    """/v1/chat/completions and /v1/responses take the same routes: haiku goes to mlx_lm.server, the rest local."""
    import openai

    sdk = openai.OpenAI(base_url=f"{routed.url}/v1", api_key=TOKEN, max_retries=0)
    chat = sdk.chat.completions.create(model="claude-haiku-4-5", max_tokens=8, temperature=0,
                                       messages=[{"role": "user", "content": "Say something."}])
    assert chat.choices[0].message.content and chat.choices[0].message.content != "from local"
    response = sdk.responses.create(model="claude-haiku-4-5", input="Say something.", max_output_tokens=8,
                                    temperature=0)
    assert response.output_text == chat.choices[0].message.content  # the same engine, greedy
    local = sdk.responses.create(model="anything-else", input="hi")
    assert local.output_text == "from local"


def test_a_system_prompt_and_a_conversation_go_through(routed):
    reply = client(routed).messages.create(**ask(
        system=[{"type": "text", "text": "You are terse."}],
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                  {"role": "user", "content": [{"type": "text", "text": "again"}]}]))
    assert reply.content[0].text and reply.stop_reason in ("max_tokens", "end_turn")


def test_status_and_metrics_show_the_upstream(routed):
    client(routed).messages.create(**ask())
    status = httpx.get(f"{routed.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
    gpu = next(backend for backend in status["backends"] if backend["name"] == "gpu")
    assert gpu["kind"] == "openai" and gpu["state"] == "ok"
    metrics = httpx.get(f"{routed.url}/metrics", headers={"x-api-key": TOKEN}).text
    assert 'mlxclaude_tokens_total{backend="gpu",direction="output"}' in metrics


def test_when_the_upstream_dies_its_requests_fall_back_to_local(routed, upstream):
    upstream.kill()
    assert client(routed).messages.create(**ask()).content[0].text == "from local"
    with client(routed).messages.stream(**ask()) as stream:
        assert stream.get_final_message().content[0].text == "from local"
    status = httpx.get(f"{routed.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
    assert next(b for b in status["backends"] if b["name"] == "gpu")["state"] == "cooling down"

