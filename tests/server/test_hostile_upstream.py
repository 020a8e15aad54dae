"""A hostile remote engine on loopback (tests/support/hostile_upstream.py), through the real server: a reply
that breaks off is an error, never half an answer accepted as whole; a client that goes away closes the
upstream reply; an enormous line is refused after one scan; a key the upstream echoes never comes back."""

from __future__ import annotations

import json
import re
import tomllib

import anthropic
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxclaude.routing.config import parse_routing
from support.hostile_upstream import Reply, anthropic_text_stream, hostile_upstream, openai_chunk, openai_text_stream, sse
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.waiting import wait_for

KEY = "sk-live-very-secret-key-0123456789"
BIG_LINE = 20 * 1024 * 1024
WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


class Scenario:
    """What the upstream answers next, set by each test."""
    reply: Reply = Reply()


def serve_both(upstream_url: str):
    toml = (f'[backends.oa]\nkind = "openai"\nurl = "{upstream_url}/v1"\nmodel = "m"\napi_key_env = "HOSTILE_KEY"\n'
            f'[backends.an]\nkind = "anthropic"\nurl = "{upstream_url}"\napi_key_env = "HOSTILE_KEY"\n'
            '[routes]\n"via-oa" = "oa"\n"via-an" = "an"\n"*" = "local"\n')
    routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
    return live_server(lambda: ScriptedBackend(lambda chat: "local"), routing=routing)


@pytest.fixture(scope="module")
def scenario():
    return Scenario()


@pytest.fixture(scope="module")
def server(scenario):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSTILE_KEY", KEY)
        with hostile_upstream(lambda request: scenario.reply) as upstream, serve_both(upstream.url) as server:
            server.upstream = upstream
            yield server


def ask(model: str, stream: bool = True, **extra) -> dict:
    return {"model": model, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}], **extra}


def events_of(body: bytes) -> list[tuple[str, dict]]:
    found = []
    for block in body.decode().split("\n\n"):
        name = re.search(r"^event: (.*)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        if name and data:
            found.append((name.group(1), json.loads(data.group(1))))
    return found


def streamed_text(events: list[tuple[str, dict]]) -> str:
    return "".join(data["delta"].get("text", "") for name, data in events if name == "content_block_delta")


def post(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/messages", json=body, timeout=60)


TRUNCATIONS = {
    "openai, EOF after text": ("via-oa", Reply(pieces=openai_text_stream("half an ", "answer", finish=None,
                                                                         done=False))),
    "openai, chunked body cut": ("via-oa", Reply(pieces=openai_text_stream("half", finish=None, done=False),
                                                 framing="chunked", cut=True)),
    "openai, EOF mid-line": ("via-oa", Reply(pieces=[sse(openai_chunk({"content": "half"})), b'data: {"id"'])),
    "anthropic, EOF before message_stop": ("via-an", Reply(pieces=anthropic_text_stream("half", stop=False))),
    "anthropic, chunked body cut": ("via-an", Reply(pieces=anthropic_text_stream("half", stop=False),
                                                    framing="chunked", cut=True)),
}


@pytest.mark.parametrize("case", TRUNCATIONS)
def test_a_stream_that_breaks_off_ends_with_an_error_event_not_message_stop(server, scenario, case):
    model, scenario.reply = TRUNCATIONS[case]
    response = post(server, ask(model))
    events = events_of(response.content)
    names = [name for name, _ in events]
    assert "message_stop" not in names and names[-1] == "error", names
    assert events[-1][1]["error"]["type"] == "api_error"
    assert "broke off" in events[-1][1]["error"]["message"]


@pytest.mark.parametrize("model", ["via-oa", "via-an"])
def test_a_truncated_stream_through_the_sdk_raises(server, scenario, model):
    scenario.reply = TRUNCATIONS["openai, EOF after text" if model == "via-oa" else
                                 "anthropic, EOF before message_stop"][1]
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.APIStatusError, match="broke off"):
        with client.messages.stream(**{k: v for k, v in ask(model).items() if k != "stream"}) as stream:
            stream.get_final_message()


def test_an_openai_stream_with_its_finish_reason_or_its_done_is_whole(server, scenario):
    for pieces in (openai_text_stream("all ", "of it", done=False), openai_text_stream("all ", "of it", finish=None)):
        scenario.reply = Reply(pieces=pieces)
        events = events_of(post(server, ask("via-oa")).content)
        assert events[-1][0] == "message_stop" and streamed_text(events) == "all of it"


def test_a_json_answer_to_a_streaming_request(server, scenario):
    completion = {"id": "c", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}]}
    scenario.reply = Reply(content_type="application/json", pieces=[json.dumps(completion).encode()])
    events = events_of(post(server, ask("via-oa")).content)
    assert streamed_text(events) == "whole" and events[-1][0] == "message_stop"  # read as the whole reply it is

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "whole"}], "usage": {"input_tokens": 1, "output_tokens": 1}}
    scenario.reply = Reply(content_type="application/json", pieces=[json.dumps(message).encode()])
    response = post(server, ask("via-an"))
    assert response.status_code == 500 and response.headers["content-type"].startswith("application/json")
    assert "not an event stream" in response.json()["error"]["message"]


@pytest.mark.parametrize("model", ["via-oa", "via-an"])
def test_one_enormous_line_is_refused_with_an_error(server, scenario, model):
    line = b"data: " + b"x" * BIG_LINE + b"\n\n"
    prefix = openai_text_stream("ok", finish=None, done=False) if model == "via-oa" else \
        anthropic_text_stream("ok", stop=False)
    scenario.reply = Reply(pieces=prefix + [line[i:i + 65536] for i in range(0, len(line), 65536)])
    events = events_of(post(server, ask(model)).content)
    assert events[-1][0] == "error" and "longer than 16 MiB" in events[-1][1]["error"]["message"]
    assert streamed_text(events) == "ok"
    assert httpx.get(f"{server.url}/health").status_code == 200


@pytest.mark.parametrize("model", ["via-oa", "via-an"])
def test_a_key_the_upstream_echoes_never_reaches_the_client_or_the_log(server, scenario, model, capfd):
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}. Find yours at example.com",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    if model == "via-an":
        echo = {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}
    scenario.reply = Reply(status=401, content_type="application/json", pieces=[json.dumps(echo).encode()])
    for stream in (False, True):
        response = post(server, ask(model, stream=stream))
        assert response.status_code == 401
        assert KEY not in response.text and "***" in response.text
    assert server.upstream.requests[-1].headers.get("authorization", server.upstream.requests[-1].headers.get(
        "x-api-key", "")).endswith(KEY)  # the key did go upstream
    logged = capfd.readouterr().err
    assert "request_error" in logged and KEY not in logged


def test_a_key_echoed_inside_an_anthropic_stream_is_masked(server, scenario):
    scenario.reply = Reply(pieces=anthropic_text_stream("key is " + KEY, stop=True))
    response = post(server, ask("via-an"))
    assert KEY not in response.text and "key is ***" in streamed_text(events_of(response.content))


@pytest.mark.parametrize("model", ["via-oa", "via-an"])
def test_a_client_that_goes_away_closes_the_upstream_reply(server, scenario, model):
    start = openai_text_stream("first", finish=None, done=False) if model == "via-oa" else \
        anthropic_text_stream("first", stop=False)
    more = sse(openai_chunk({"content": " more"})) if model == "via-oa" else sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " more"}},
        event="content_block_delta")
    scenario.reply = Reply(pieces=start, trickle=more)
    upstream = server.upstream
    gone_before = upstream.disconnects
    cancelled_before = requests_total(server, "cancelled", model)
    for _ in range(10):
        with httpx.stream("POST", f"{server.url}/v1/messages", json=ask(model), timeout=60) as response:
            for line in response.iter_lines():
                if "first" in line:
                    break  # the client goes away mid-stream
    wait_for(lambda: upstream.active == 0, what="every upstream reply closed")
    assert upstream.disconnects - gone_before == 10
    wait_for(lambda: requests_total(server, "cancelled", model) - cancelled_before == 10,
             what="the cancelled streams counted")


def requests_total(server, status: str, model: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    pattern = rf'^mlxclaude_requests_total\{{[^}}]*model="{model}"[^}}]*status="{status}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def test_a_tool_name_split_across_deltas_is_one_call(server, scenario):
    pieces = [sse(openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                "function": {"name": "get_", "arguments": ""}}]})),
              sse(openai_chunk({"tool_calls": [{"index": 0, "function": {"name": "weather"}}]})),
              sse(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]})),
              sse(openai_chunk(finish="tool_calls")), sse("[DONE]")]
    scenario.reply = Reply(pieces=pieces)
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    reply = client.messages.create(**{k: v for k, v in ask("via-oa").items() if k != "stream"}, tools=[WEATHER_TOOL])
    assert [(block.type, getattr(block, "name", None)) for block in reply.content] == [("tool_use", "get_weather")]
    assert reply.content[0].input == {"city": "Oslo"} and reply.stop_reason == "tool_use"


# --- fuzz: wherever the upstream's chunks split and wherever it breaks, never a silent truncation ------------

FULL_TEXT = "one two three four"


@st.composite
def faulty_replies(draw):
    model = draw(st.sampled_from(["via-oa", "via-an"]))
    words = ["one", " two", " three", " four"]
    whole = b"".join(openai_text_stream(*words) if model == "via-oa" else anthropic_text_stream(*words))
    cut = draw(st.one_of(st.none(), st.integers(0, len(whole))))
    body = whole if cut is None else whole[:cut]
    splits = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    edges = [0, *splits, len(body)]
    pieces = [body[a:b] for a, b in zip(edges, edges[1:]) if b > a]
    framing = draw(st.sampled_from(["close", "chunked"]))
    return model, Reply(pieces=pieces, framing=framing, cut=cut is not None and draw(st.booleans()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=faulty_replies())
def test_fuzzed_faults_give_a_whole_message_or_an_error_event(server, scenario, case):
    model, scenario.reply = case
    response = post(server, ask(model))
    assert response.status_code == 200
    events = events_of(response.content)
    names = [name for name, _ in events]
    assert names and names[0] in ("message_start", "error")
    if "message_stop" in names:
        assert names[-1] == "message_stop" and streamed_text(events) == FULL_TEXT
    else:
        assert names[-1] == "error", names
    assert httpx.get(f"{server.url}/health").status_code == 200
