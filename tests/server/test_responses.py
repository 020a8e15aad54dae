"""POST /v1/responses, driven by the official `openai` SDK as Codex CLI uses it: input items, function calls and
their outputs, reasoning, the streamed event sequence, previous_response_id, errors; the scripted engine for
deterministic flows, the real MLX engine for the rest."""

from __future__ import annotations

import json

import openai
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

TOKEN = "responses-token"
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}


def agent(chat):
    last = chat.messages[-1]
    if chat.json_schema is not None:
        return '{"answer": "42"}'
    if last["role"] == "tool":
        return "Listed: " + last["content"]
    if chat.tools:
        return '<think>I should look.</think>Looking.<tool_call>{"name": "exec_command", "arguments": {"cmd": "ls"}}</tool_call>'
    return "Hi."


@pytest.fixture(scope="module")
def scripted():
    backend = ScriptedBackend(agent)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        server.backend = backend
        yield server


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)


def test_a_whole_response_with_instructions(scripted):
    response = client(scripted).responses.create(model="local", instructions="Be brief.", input="hello")
    assert response.status == "completed" and response.output_text == "Hi."
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert scripted.backend.requests[-1].messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_round_trip_as_codex_sends_it(scripted, stream):
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]}]
    if stream:
        with client(scripted).responses.stream(model="local", input=items, tools=[EXEC]) as events:
            kinds = [event.type for event in events]
            response = events.get_final_response()
        assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
        assert "response.function_call_arguments.delta" in kinds and "response.output_text.delta" in kinds
        assert "response.reasoning_summary_text.delta" in kinds
    else:
        response = client(scripted).responses.create(model="local", input=items, tools=[EXEC])
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output[0].summary[0].text == "I should look."
    call = response.output[2]
    assert call.name == "exec_command" and json.loads(call.arguments) == {"cmd": "ls"}
    follow_up = [*items, {"type": "reasoning", "id": response.output[0].id, "summary": [],
                          "encrypted_content": "opaque"},
                 {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
                 {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt b.txt"}]
    again = client(scripted).responses.create(model="local", input=follow_up, tools=[EXEC])
    assert again.output_text == "Listed: a.txt b.txt"
    sent = scripted.backend.requests[-1]
    assert sent.messages[0] == {"role": "system", "content": "You are Codex."}
    assert [message["role"] for message in sent.messages[-2:]] == ["assistant", "tool"]


def test_previous_response_id_continues_a_held_response(scripted):
    first = client(scripted).responses.create(model="local", input="list the files", tools=[EXEC])
    call = [item for item in first.output if item.type == "function_call"][0]
    second = client(scripted).responses.create(
        model="local", previous_response_id=first.id, tools=[EXEC],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "c.txt"}])
    assert second.output_text == "Listed: c.txt"
    unkept = client(scripted).responses.create(model="local", input="hello", store=False)
    with pytest.raises(openai.BadRequestError) as raised:
        client(scripted).responses.create(model="local", input="more", previous_response_id=unkept.id)
    assert "is not held by this server" in raised.value.body["message"] and "whole input" in raised.value.body["message"]


def test_a_json_schema_text_format_reaches_the_typed_request(scripted):
    response = client(scripted).responses.create(model="local", input="answer", text={"format": {
        "type": "json_schema", "name": "answer", "schema": {"type": "object", "properties": {
            "answer": {"type": "string"}}, "required": ["answer"]}}})
    assert json.loads(response.output_text) == {"answer": "42"}
    assert scripted.backend.requests[-1].json_schema["required"] == ["answer"]


def test_codex_s_web_search_tool_is_left_out_without_a_search_provider(scripted):
    response = client(scripted).responses.create(model="local", input="hello",
                                                 tools=[{"type": "web_search", "external_web_access": True}])
    assert response.output_text == "Hi."  # not "web search is not configured": Codex offers it on every request
    assert scripted.backend.requests[-1].web_search is None


def test_bad_input_is_an_openai_shaped_400(scripted):
    with pytest.raises(openai.BadRequestError) as raised:
        client(scripted).responses.create(model="local", input=[{"type": "computer_call_output", "call_id": "x"}])
    assert raised.value.body["type"] == "invalid_request_error" and "computer_call_output" in raised.value.body["message"]


@pytest.mark.mlx
def test_on_the_real_engine_streamed_and_whole_agree_and_the_next_turn_is_cached(tiny_model_dir):
    with live_server(mlx_backend_loader(ServerSettings(model=str(tiny_model_dir))), auth_token=TOKEN) as server:
        ask = dict(model="local", instructions="You are terse.", input="Say something.", max_output_tokens=12,
                   temperature=0)
        whole = client(server).responses.create(**ask)
        last = list(client(server).responses.create(**ask, stream=True))[-1]
        assert last.type == f"response.{whole.status}" and whole.status in ("completed", "incomplete")
        assert last.response.output_text == whole.output_text  # greedy: the same words both ways
        again = client(server).responses.create(model="local", previous_response_id=whole.id, input="More.",
                                                instructions="You are terse.", max_output_tokens=4, temperature=0)
        assert again.usage.input_tokens_details.cached_tokens > 0


def test_a_developer_message_mid_session_stays_in_place_so_the_prompt_before_it_does_not_change(scripted):
    start = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}]
    client(scripted).responses.create(model="local", input=start)
    first = scripted.backend.requests[-1].messages
    later = [*start, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]},
             {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "cwd is /tmp"}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and now?"}]}]
    client(scripted).responses.create(model="local", input=later)
    second = scripted.backend.requests[-1].messages
    assert second[:len(first)] == first  # the same system prompt and first turn: the prompt cache's prefix holds
    assert "<system-reminder>\ncwd is /tmp\n</system-reminder>" in second[-1]["content"]
    assert second[-1]["content"].endswith("and now?")
