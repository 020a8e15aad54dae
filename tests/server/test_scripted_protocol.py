"""The official anthropic SDK against the real app, driven by a scripted engine (exact model text)."""

from __future__ import annotations

import json
import re

import anthropic
import httpx
import pytest

from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.waiting import wait_for

TOKEN = "test-token"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def fixed(text: str):
    return lambda chat: text


@pytest.fixture
def serve():
    servers = []

    def start(script, **settings):
        backend = ScriptedBackend(script, **{k: settings.pop(k) for k in ("delay", "context_length") if k in settings})
        manager = live_server(lambda: backend, auth_token=TOKEN, **settings)
        server = manager.__enter__()
        servers.append(manager)
        client = anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0)
        return backend, server, client

    yield start
    for manager in servers:
        manager.__exit__(None, None, None)


def ask(client, **overrides):
    params = dict(model="claude-opus-4-8", max_tokens=256, messages=[{"role": "user", "content": "hi"}])
    params.update(overrides)
    return params


def test_text_reply_streamed_and_not(serve):
    _, _, client = serve(fixed("Hello there, friend."))
    message = client.messages.create(**ask(client))
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello there, friend."
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-opus-4-8"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    with client.messages.stream(**ask(client)) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Hello there, friend."


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequence_is_removed_and_reported(serve, stream):
    _, _, client = serve(fixed("one two STOP three"))
    params = ask(client, stop_sequences=["STOP", "never"])
    if stream:
        with client.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**params)
    assert message.content[0].text == "one two"
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "STOP"


def test_max_tokens_stops_generation(serve):
    _, _, client = serve(fixed("a" * 300))  # 100 pieces of 3 chars, one "token" each
    message = client.messages.create(**ask(client, max_tokens=5))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    assert message.content[0].text == "a" * 15


def test_max_tokens_one_returns_at_most_one_token(serve):
    _, _, client = serve(fixed("unused words"))
    message = client.messages.create(**ask(client, max_tokens=1))
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 1


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_then_text_then_tool_call(serve, stream):
    reply = ('<think>The user wants weather.</think>Let me check.'
             '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')
    _, _, client = serve(fixed(reply))
    params = ask(client, tools=[WEATHER_TOOL], thinking={"type": "adaptive"})
    if stream:
        with client.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**params)
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    thinking, text, tool = message.content
    assert thinking.thinking == "The user wants weather." and thinking.signature
    assert text.text == "Let me check."
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"}
    assert tool.id.startswith("toolu_")
    assert message.stop_reason == "tool_use"


def test_thinking_disabled_strips_reasoning(serve):
    _, _, client = serve(fixed("<think>secret</think>Answer."))
    message = client.messages.create(**ask(client, thinking={"type": "disabled"}))
    assert [(block.type, block.text) for block in message.content] == [("text", "Answer.")]


def test_raw_stream_event_order(serve):
    _, server, _ = serve(fixed("<think>hm</think>Hi.<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>"))
    body = ask(None, stream=True, tools=[WEATHER_TOOL])
    with httpx.stream("POST", f"{server.url}/v1/messages?beta=true", json=body,
                      headers={"authorization": f"Bearer {TOKEN}"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_")
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    blocks = [n for n in names if n in ("content_block_start", "content_block_stop")]
    assert blocks == ["content_block_start", "content_block_stop"] * 3


def test_history_with_tool_use_and_tool_result_reaches_the_engine(serve):
    backend, _, client = serve(fixed("Sunny."))
    client.messages.create(**ask(client, tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom",
                                      "is_error": True}]},
    ]))
    roles = [m["role"] for m in backend.requests[-1].messages]
    assert roles == ["user", "assistant", "tool"]
    assert backend.requests[-1].messages[-1]["content"] == "Error: boom"


def test_count_tokens_matches_the_prompt_the_engine_sees(serve):
    _, _, client = serve(fixed("ok"))
    counted = client.messages.count_tokens(model="claude-opus-4-8", messages=[{"role": "user", "content": "hi"}])
    message = client.messages.create(**ask(client))
    assert counted.input_tokens == message.usage.input_tokens + message.usage.cache_read_input_tokens


def test_models_list_and_retrieve(serve):
    _, _, client = serve(fixed("ok"))
    models = list(client.models.list())
    assert [model.id for model in models] == ["claude-local-scripted", "scripted"]  # Claude Code's kind of id first
    assert client.models.retrieve("claude-sonnet-4-5").id == "claude-sonnet-4-5"
    assert client.models.retrieve("scripted").id == "scripted"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("gpt-4")


def test_auth_failures(serve):
    _, server, _ = serve(fixed("ok"))
    wrong = anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(**ask(wrong))
    assert caught.value.body["error"]["type"] == "authentication_error"
    bearer = anthropic.Anthropic(base_url=server.url, auth_token=TOKEN, max_retries=0)
    assert bearer.messages.create(**ask(bearer)).content[0].text == "ok"
    assert httpx.get(f"{server.url}/health").status_code == 200  # health needs no token


@pytest.mark.parametrize("body, fragment", [
    ({"model": "m", "max_tokens": 10}, "messages"),
    ({"model": "m", "max_tokens": -1, "messages": []}, "max_tokens"),
    ({"model": "m", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}, "role"),
])
def test_bad_input_is_an_anthropic_400(serve, body, fragment):
    _, server, _ = serve(fixed("ok"))
    response = httpx.post(f"{server.url}/v1/messages", json=body, headers={"x-api-key": TOKEN})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]


def test_invalid_json_and_unknown_route(serve):
    _, server, _ = serve(fixed("ok"))
    response = httpx.post(f"{server.url}/v1/messages", content=b"{nope", headers={"x-api-key": TOKEN})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.get(f"{server.url}/v1/nothing", headers={"x-api-key": TOKEN})
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("data", ["iVBORw0KGgo=", "A" * 2_000_000])  # a big screenshot is no "prompt too long"
def test_an_image_on_a_text_model_is_a_placeholder_and_the_reply_carries_on(serve, data, capfd):
    backend, _, client = serve(fixed("ok"), context_length=4096)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    reply = client.messages.create(**ask(client, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, image]}]))
    assert reply.content[0].text == "ok"
    assert backend.requests[-1].messages[-1]["content"] == \
        "what is this?\n\n[image omitted: this model cannot see images]"
    logged = [line for line in capfd.readouterr().err.splitlines() if '"images_omitted"' in line]
    assert len(logged) == 1 and '"images":1' in logged[0]


def test_prompt_too_long_uses_the_wording_claude_code_compacts_on(serve):
    _, _, client = serve(fixed("ok"), context_length=20)
    long_text = " ".join(["word"] * 50)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**ask(client, messages=[{"role": "user", "content": long_text}]))
    message = caught.value.body["error"]["message"]
    assert message.startswith("prompt is too long: ") and message.endswith(" tokens > 20 maximum")


def test_max_tokens_is_clamped_or_refused_at_the_context_edge(serve):
    _, _, client = serve(fixed("x" * 600), context_length=60)
    message = client.messages.create(**ask(client, max_tokens=20000))
    assert message.stop_reason == "max_tokens"
    prompt = message.usage.input_tokens + message.usage.cache_read_input_tokens
    assert prompt + message.usage.output_tokens == 60
    _, _, strict = serve(fixed("ok"), context_length=60, max_tokens_policy="error")
    with pytest.raises(anthropic.BadRequestError) as caught:
        strict.messages.create(**ask(strict, max_tokens=20000))
    assert "input length and `max_tokens` exceed context limit: " in caught.value.body["error"]["message"]
    assert caught.value.body["error"]["message"].endswith("decrease input length or `max_tokens` and try again")


def test_mid_conversation_system_message_and_beta_query(serve):
    backend, server, _ = serve(fixed("ok"))
    body = {
        "model": "claude-opus-4-8", "max_tokens": 50,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc;"},
                   {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "agents: none"}],
        "metadata": {"user_id": '{"device_id":"d","session_id":"s-1"}'},
        "thinking": {"type": "adaptive"}, "context_management": {"edits": []},
        "output_config": {"effort": "high"}, "some_future_field": 1,
    }
    response = httpx.post(f"{server.url}/v1/messages?beta=true", json=body,
                          headers={"x-api-key": TOKEN, "anthropic-beta": "made-up-beta-2030-01-01"})
    assert response.status_code == 200, response.text
    chat = backend.requests[-1]
    assert chat.session_id == "s-1"
    assert chat.messages[0] == {"role": "system", "content": "You are helpful."}
    assert "agents: none" in chat.messages[1]["content"]


def test_client_disconnect_cancels_generation_and_is_logged_and_counted(serve, capfd):
    backend, server, _ = serve(fixed("z" * 3000), delay=0.01)
    body = ask(None, stream=True, max_tokens=5000)
    with httpx.stream("POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": TOKEN}) as response:
        request_id = response.headers["request-id"]
        for line in response.iter_lines():
            if "text_delta" in line:
                break
    assert backend.cancelled.wait(5), "generation kept running after the client left"
    logged = wait_for(lambda: [json.loads(line) for line in capfd.readouterr().err.splitlines()
                               if '"request_cancelled"' in line and request_id in line], what="request_cancelled")
    assert logged[0]["status"] == "cancelled" and logged[0]["backend"] == "local"
    metrics = httpx.get(f"{server.url}/metrics", headers={"x-api-key": TOKEN}).text
    assert re.search(r'^mlxclaude_requests_total\{[^}]*status="cancelled"[^}]*\} 1\.0$', metrics, re.M), metrics


def test_ping_is_sent_while_the_engine_is_silent(serve):
    _, server, _ = serve(fixed("late"), delay=0.6, ping_interval=0.2)
    body = ask(None, stream=True)
    with httpx.stream("POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": TOKEN}) as response:
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[1] == "ping"


def call(name: str, **arguments) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


BASH_TOOL = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_tool_keeps_only_calls_to_that_tool(serve, stream):
    reply = call("get_weather", city="Paris") + call("Bash", command="ls") + call("get_weather", city="Rome")
    _, _, client = serve(fixed(reply))
    params = ask(client, tools=[WEATHER_TOOL, BASH_TOOL], tool_choice={"type": "tool", "name": "get_weather"})
    if stream:
        with client.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**params)
    assert [(block.name, block.input) for block in message.content] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert message.stop_reason == "tool_use"


def test_an_exact_repeat_of_a_call_ends_the_reply(serve):
    reply = call("Bash", command="ls") + call("Bash", command="pwd") + call("Bash", command="ls") * 40
    backend, _, client = serve(fixed(reply))
    message = client.messages.create(**ask(client, tools=[BASH_TOOL]))
    assert [block.input["command"] for block in message.content] == ["ls", "pwd"]
    assert message.stop_reason == "tool_use"
    assert backend.cancelled.is_set(), "the engine kept generating repeats"
    assert message.usage.output_tokens < len(reply) // 3 // 2
