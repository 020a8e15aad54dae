"""POST /v1/chat/completions, driven by the official `openai` SDK: the same request path as /v1/messages (the
scripted engine for deterministic tool flows, the real MLX engine for the rest), OpenAI-shaped replies, chunks,
usage and errors."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.images import png_base64
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

TOKEN = "openai-token"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


def weather_model(chat):
    if chat.json_schema is not None:
        return '{"answer": "sunny"}'
    if chat.tools and chat.messages[-1]["role"] != "tool":
        calls = "".join(f'<tool_call>{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}</tool_call>'
                        for city in ("Paris", "Oslo"))
        return "Looking." + calls
    if chat.messages[-1]["role"] == "tool":
        return "It is " + chat.messages[-1]["content"] + "."
    return "Hello there."


@pytest.fixture(scope="module")
def scripted():
    backend = ScriptedBackend(weather_model)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        server.backend = backend
        yield server


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)


def test_a_whole_reply(scripted):
    reply = client(scripted).chat.completions.create(
        model="gpt-x", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert reply.object == "chat.completion" and reply.model == "gpt-x"
    assert reply.choices[0].message.content == "Hello there." and reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert scripted.backend.requests[-1].messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_and_the_round_trip(scripted, stream):
    messages = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    if stream:
        chunks = list(client(scripted).chat.completions.create(model="gpt-x", messages=messages, tools=[WEATHER],
                                                               stream=True, stream_options={"include_usage": True}))
        calls: dict[int, dict] = {}
        for chunk in chunks[:-1]:
            for call in chunk.choices[0].delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": call.id, "name": call.function.name, "arguments": ""})
                entry["arguments"] += call.function.arguments or ""
        assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]][-1] == "tool_calls"
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
        found = [calls[index] for index in sorted(calls)]
    else:
        reply = client(scripted).chat.completions.create(model="gpt-x", messages=messages, tools=[WEATHER])
        assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content == "Looking."
        found = [{"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
                 for call in reply.choices[0].message.tool_calls]
    assert [(call["name"], json.loads(call["arguments"])) for call in found] == \
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    follow_up = [*messages,
                 {"role": "assistant", "content": None, "tool_calls": [
                     {"id": call["id"], "type": "function",
                      "function": {"name": call["name"], "arguments": call["arguments"]}} for call in found]},
                 *({"role": "tool", "tool_call_id": call["id"], "content": "sunny"} for call in found)]
    reply = client(scripted).chat.completions.create(model="gpt-x", messages=follow_up, tools=[WEATHER])
    assert reply.choices[0].message.content == "It is sunny."
    sent = scripted.backend.requests[-1].messages
    assert [message["role"] for message in sent[-3:]] == ["assistant", "tool", "tool"]


def test_options_reach_the_typed_request(scripted):
    client(scripted).chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER], tool_choice="required",
        parallel_tool_calls=False, stop=["END"], max_completion_tokens=77, temperature=0.3, top_p=0.9)
    chat = scripted.backend.requests[-1]
    assert chat.tool_choice.type == "any" and chat.tool_choice.disable_parallel_tool_use
    assert chat.stop_sequences == ("END",) and chat.max_tokens == 77
    assert chat.sampling.temperature == 0.3 and chat.sampling.top_p == 0.9
    reply = client(scripted).chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "weather?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": {
            "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}})
    assert json.loads(reply.choices[0].message.content) == {"answer": "sunny"}
    assert scripted.backend.requests[-1].json_schema["required"] == ["answer"]


def test_an_image_part_becomes_the_typed_requests_image(scripted):
    data = png_base64(1)
    client(scripted).chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]}])
    # the scripted model cannot see: the image reached the typed request and became the placeholder, as it does
    # through /v1/messages
    assert scripted.backend.requests[-1].messages[-1]["content"] == \
        "what is it?\n\n[image omitted: this model cannot see images]"


@pytest.mark.parametrize("body, status, says", [
    ({"model": "m", "messages": []}, 400, "messages: at least one message is required"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n: only one choice"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, 400, "'wizard' is not one of"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": 3,
      "tools": [WEATHER]}, 400, "tool_choice"),
])
def test_bad_requests_get_openai_shaped_errors(scripted, body, status, says):
    response = httpx.post(f"{scripted.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == status
    error = response.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error" and "param" in error


def test_a_wrong_key_is_an_openai_shaped_401(scripted):
    with pytest.raises(openai.AuthenticationError) as raised:
        openai.OpenAI(base_url=f"{scripted.url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}])
    assert raised.value.body["type"] == "authentication_error"


# --- the real MLX engine ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tiny_model_dir):
    with live_server(mlx_backend_loader(ServerSettings(model=str(tiny_model_dir))), auth_token=TOKEN) as server:
        yield server


@pytest.mark.mlx
def test_on_the_real_engine_streamed_and_whole_agree_and_the_second_turn_is_cached(real):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say something."}]
    whole = client(real).chat.completions.create(model="local", messages=messages, max_tokens=12, temperature=0)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in client(real).chat.completions.create(
        model="local", messages=messages, max_tokens=12, temperature=0, stream=True) if chunk.choices)
    assert text == whole.choices[0].message.content and whole.choices[0].finish_reason in ("stop", "length")
    again = client(real).chat.completions.create(model="local", max_tokens=4, temperature=0, messages=[
        *messages, {"role": "assistant", "content": text}, {"role": "user", "content": "More."}])
    assert again.usage.prompt_tokens_details.cached_tokens > 0


@pytest.mark.mlx
def test_on_the_real_engine_a_json_schema_reply_is_valid_json(real):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    reply = client(real).chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Plan a trip."}], max_tokens=64, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}})
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"city", "days"} and isinstance(value["days"], int)


@pytest.mark.mlx
def test_requests_from_either_door_show_alike_in_logs_and_metrics(real, capfd):
    client(real).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    httpx.post(f"{real.url}/v1/messages", headers={"x-api-key": TOKEN}, timeout=120,
               json={"model": "local", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]})
    finished = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"request_finish"' in line]
    assert len(finished) == 2 and {record["backend"] for record in finished} == {"local"}
    metrics = httpx.get(f"{real.url}/metrics", headers={"x-api-key": TOKEN}).text
    counted = re.findall(r'^mlxclaude_requests_total\{backend="local".*status="ok"\} ([\d.]+)$', metrics, re.M)
    assert sum(float(value) for value in counted) >= 2
