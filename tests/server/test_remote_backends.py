"""Routes to remote engines, through the real app and the official SDK: an OpenAI-shaped, an Azure-shaped and
an Anthropic-shaped loopback server record what they are sent; fallbacks, cooldown and recovery."""

from __future__ import annotations

import json
import re
import time
import tomllib

import anthropic
import httpx
import pytest

from mlxclaude.routing.config import parse_routing
from support.live_server import free_port, live_server
from support.scripted_backend import ScriptedBackend
from support.upstreams import Answer, RecordingUpstream, chat_chunks, chat_completion, recording_upstream

TOKEN = "test-token"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                     "required": ["city"]},
}


def routing(toml: str):
    return parse_routing(tomllib.loads(toml), local_model="/models/local")


def local_says(text: str) -> ScriptedBackend:
    return ScriptedBackend(lambda chat: text, name="local-model")


def serve(toml: str, backend: ScriptedBackend | None = None):
    backend = backend or local_says("from local")
    return live_server(lambda: backend, routing=routing(toml), auth_token=TOKEN)


def client_for(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0)


def ask(model: str = "claude-opus-4-1", **overrides) -> dict:
    return dict(model=model, max_tokens=200, messages=[{"role": "user", "content": "hi"}], **overrides)


def openai_backend(url: str, **extra: str) -> str:
    lines = [f'{key} = "{value}"' for key, value in extra.items()]
    return f'[backends.gpu]\nkind = "openai"\nurl = "{url}/v1"\nmodel = "big-model"\napi_key_env = "GPU_KEY"\n' + \
        "\n".join(lines) + "\n"


def test_an_openai_backend_gets_chat_completions_and_its_streamed_tool_calls_come_back_whole(monkeypatch):
    monkeypatch.setenv("GPU_KEY", "sk-secret-gpu")
    arguments = json.dumps({"city": "Paris", "days": "3"})

    def script(request):
        if request.body.get("stream"):
            return Answer(chunks=chat_chunks(
                {"role": "assistant", "content": "Let me check."},
                {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                 "function": {"name": "get_weather", "arguments": ""}}]},
                *({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 7]}}]}
                  for i in range(0, len(arguments), 7)),
                finish="tool_calls",
                usage={"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                       "prompt_tokens_details": {"cached_tokens": 100}}))
        return Answer(body=chat_completion({"content": "Plain answer."}))

    with recording_upstream(script) as upstream, \
            serve(openai_backend(upstream.url) + '[routes]\n"*opus*" = "gpu"\n"*" = "local"\n') as server:
        client = client_for(server)
        with client.messages.stream(**ask(tools=[WEATHER_TOOL])) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        assert "input_json" in kinds  # the call arrives as input_json_delta
        assert [block.type for block in final.content] == ["text", "tool_use"]
        assert final.content[1].input == {"city": "Paris", "days": 3}  # checked against the schema
        assert final.stop_reason == "tool_use"
        assert final.usage.cache_read_input_tokens == 100 and final.usage.input_tokens == 20
        plain = client.messages.create(**ask())
        assert plain.content[0].text == "Plain answer."
        local = client.messages.create(**ask("claude-sonnet-4-5"))
        assert local.content[0].text == "from local"

    sent = upstream.posts()[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-secret-gpu"
    assert sent.body["model"] == "big-model" and sent.body["stream"] is True
    assert sent.body["tools"][0]["function"]["name"] == "get_weather"
    assert len(upstream.posts()) == 2  # the sonnet request stayed local


def test_azure_gets_its_deployment_url_api_version_and_key_and_a_rejected_param_is_dropped_once(monkeypatch):
    monkeypatch.setenv("AZURE_KEY", "azure-secret")

    def script(request):
        if "top_k" in request.body:
            return Answer(status=400, body={"error": {"message": "Unrecognized request argument supplied: top_k",
                                                      "type": "invalid_request_error", "param": None}})
        return Answer(body=chat_completion({"content": "hello from azure"}))

    with recording_upstream(script) as upstream:
        toml = (f'[backends.azure]\nkind = "azure"\nurl = "{upstream.url}"\ndeployment = "gpt-4o"\n'
                f'api_version = "2024-10-21"\napi_key_env = "AZURE_KEY"\n[routes]\n"*" = "azure"\n')
        with serve(toml) as server:
            client = client_for(server)
            for _ in range(2):
                reply = client.messages.create(**ask(extra_body={"top_k": 5}))
                assert reply.content[0].text == "hello from azure"
    posts = upstream.posts()
    assert [("top_k" in post.body) for post in posts] == [True, False, False]  # learned once, then never sent
    assert posts[0].path == "/openai/deployments/gpt-4o/chat/completions"
    assert posts[0].query == {"api-version": ["2024-10-21"]}
    assert posts[0].headers["api-key"] == "azure-secret" and "authorization" not in posts[0].headers


def test_an_anthropic_backend_gets_the_request_as_sent_and_its_stream_comes_back_byte_for_byte(monkeypatch):
    monkeypatch.setenv("REMOTE_KEY", "remote-secret")
    sse = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_remote", "type": "message", "role": "assistant", "model": "remote-model", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "remote words"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 3}}),
        ("message_stop", {"type": "message_stop"}),
    ])

    def script(request):
        if request.path.endswith("count_tokens"):
            return Answer(body={"input_tokens": 4242})
        return Answer(raw_sse=sse)

    with recording_upstream(script) as upstream:
        toml = f'[backends.remote]\nkind = "anthropic"\nurl = "{upstream.url}"\napi_key_env = "REMOTE_KEY"\n' \
               f'[routes]\n"*" = "remote"\n'
        with serve(toml) as server:
            body = ask(metadata={"user_id": "u1"}, temperature=0.5, stream=True)
            response = httpx.post(f"{server.url}/v1/messages", json=body,
                                  headers={"x-api-key": TOKEN, "anthropic-beta": "some-beta"})
            counted = client_for(server).messages.count_tokens(model="claude-x", messages=body["messages"])
    assert response.status_code == 200 and response.content == sse
    assert counted.input_tokens == 4242
    sent = upstream.posts()[0]
    assert sent.path == "/v1/messages" and sent.body == body
    assert sent.headers["x-api-key"] == "remote-secret" and sent.headers["anthropic-beta"] == "some-beta"
    assert TOKEN not in json.dumps(sent.headers)  # our own token never goes upstream


def test_a_dead_backend_falls_back_then_cools_down_then_recovers(monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    toml = openai_backend(dead, cooldown="1s") + 'cooldown_after = 2\n[routes]\n"*" = "gpu"\n[fallbacks]\ngpu = ["local"]\n'
    with serve(toml) as server:
        client = client_for(server)
        for _ in range(2):
            assert client.messages.create(**ask()).content[0].text == "from local"
        status = httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
        gpu = next(backend for backend in status["backends"] if backend["name"] == "gpu")
        assert gpu["state"] == "cooling down" and gpu["failures"] == 2
        assert status["fallbacks"] == {"gpu": ["local"]}
        with client.messages.stream(**ask()) as stream:  # cooling: not tried at all
            assert stream.get_final_message().content[0].text == "from local"
        time.sleep(1.1)
        # the cooldown is over: tried again, and it still fails → straight into a new cooldown
        assert client.messages.create(**ask()).content[0].text == "from local"
        status = httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
        assert next(b for b in status["backends"] if b["name"] == "gpu")["state"] == "cooling down"


def test_a_backend_that_comes_back_serves_again_after_its_cooldown():
    port = free_port()
    toml = openai_backend(f"http://127.0.0.1:{port}", cooldown="0.5s") + \
        'cooldown_after = 1\n[routes]\n"*" = "gpu"\n[fallbacks]\ngpu = ["local"]\n'
    with serve(toml) as server:
        client = client_for(server)
        assert client.messages.create(**ask()).content[0].text == "from local"
        upstream = RecordingUpstream(lambda request: Answer(body=chat_completion({"content": "gpu is back"})),
                                     port=port).start()
        try:
            time.sleep(0.6)
            assert client.messages.create(**ask()).content[0].text == "gpu is back"
            status = httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
            assert next(b for b in status["backends"] if b["name"] == "gpu")["state"] == "ok"
        finally:
            upstream.stop()


@pytest.fixture
def log_file(tmp_path):
    from mlxclaude import logs

    path = tmp_path / "server.jsonl"
    logs.configure(path, echo=False)
    yield path
    logs.configure(None)


@pytest.mark.parametrize("status, error_type", [(429, "rate_limit_error"), (503, "overloaded_error")])
def test_without_a_fallback_the_upstream_error_reaches_the_client_in_anthropic_shape(status, error_type, log_file):
    def script(request):
        return Answer(status=status, body={"error": {"message": "slow down"}}, headers={"retry-after": "7"})

    with recording_upstream(script) as upstream, serve(openai_backend(upstream.url) + '[routes]\n"*" = "gpu"\n') as server:
        response = httpx.post(f"{server.url}/v1/messages", json=ask(), headers={"x-api-key": TOKEN})
    assert response.status_code == (529 if status == 503 else status)
    assert response.json()["error"]["type"] == error_type
    assert response.headers["retry-after"] == "7"
    errors = [json.loads(line) for line in log_file.read_text().splitlines() if '"request_error"' in line]
    assert [(record["backend"], record["route"], record["status"]) for record in errors] == \
        [("gpu", "*", response.status_code)]


def test_a_context_overflow_upstream_says_prompt_is_too_long_so_claude_code_compacts():
    message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."

    def script(request):
        return Answer(status=400, body={"error": {"message": message, "type": "invalid_request_error",
                                                  "code": "context_length_exceeded"}})

    with recording_upstream(script) as upstream, serve(openai_backend(upstream.url) + '[routes]\n"*" = "gpu"\n') as server:
        response = httpx.post(f"{server.url}/v1/messages", json=ask(), headers={"x-api-key": TOKEN})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("prompt is too long")


def test_a_request_error_is_not_retried_elsewhere():
    def script(request):
        return Answer(status=401, body={"error": {"message": "bad key"}})

    toml = openai_backend("URL") + '[routes]\n"*" = "gpu"\n[fallbacks]\ngpu = ["local"]\n'
    with recording_upstream(script) as upstream, serve(toml.replace("URL", upstream.url)) as server:
        response = httpx.post(f"{server.url}/v1/messages", json=ask(), headers={"x-api-key": TOKEN})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_metrics_count_requests_per_backend_and_never_show_keys(monkeypatch):
    monkeypatch.setenv("GPU_KEY", "sk-never-shown")
    with recording_upstream(lambda request: Answer(body=chat_completion({"content": "ok"}))) as upstream, \
            serve(openai_backend(upstream.url) + '[routes]\n"*opus*" = "gpu"\n"*" = "local"\n') as server:
        client = client_for(server)
        client.messages.create(**ask())
        client.messages.create(**ask("claude-haiku-4-5"))
        assert httpx.get(f"{server.url}/metrics").status_code == 401  # token required
        text = httpx.get(f"{server.url}/metrics", headers={"x-api-key": TOKEN}).text
        status = httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).text
    assert re.search(r'mlxclaude_requests_total\{backend="gpu",kind="\w+",model="claude-opus-4-1",status="ok"\} 1.0', text)
    assert 'backend="local"' in text and "mlxclaude_backend_up" in text
    assert "sk-never-shown" not in text and "sk-never-shown" not in status
