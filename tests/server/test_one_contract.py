"""Every target meets the same contract: a remote engine's reply goes through the same reply rules as a local
model's (finite JSON, repeats), and a remote turn in flight shows in the status like a local one."""

from __future__ import annotations

import tomllib

import anthropic
import httpx

from mlxclaude.routing.config import parse_routing
from support.hostile_upstream import Reply, hostile_upstream, openai_chunk, openai_text_stream, sse
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.waiting import wait_for

TOOL = {"name": "set_value", "description": "Set a value",
        "input_schema": {"type": "object", "properties": {"x": {"type": "number"}}}}
CALL = '{"x": Infinity}'


def routed(url: str, local_text: str):
    toml = f'[backends.gpu]\nkind = "openai"\nurl = "{url}/v1"\nmodel = "m"\n[routes]\n"remote" = "gpu"\n"*" = "local"\n'
    routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
    return live_server(lambda: ScriptedBackend(lambda chat: local_text), routing=routing)


def tool_call_chunks(*arguments: str) -> list[bytes]:
    calls = [sse(openai_chunk({"tool_calls": [{"index": index, "id": f"call_{index}", "type": "function",
                                               "function": {"name": "set_value", "arguments": text}}]}))
             for index, text in enumerate(arguments)]
    return calls + [sse(openai_chunk(finish="tool_calls")), sse("[DONE]")]


def streamed_blocks(server, model: str) -> tuple[list[dict], str]:
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    with client.messages.stream(model=model, max_tokens=100, tools=[TOOL],
                                messages=[{"role": "user", "content": "set x"}]) as stream:
        final = stream.get_final_message()
    return [block.model_dump() for block in final.content], final.stop_reason


def test_a_remote_call_with_infinity_and_a_repeat_comes_back_as_a_local_one_does():
    local_text = f'<tool_call>{{"name": "set_value", "arguments": {CALL}}}</tool_call>' * 2
    with hostile_upstream(lambda request: Reply(pieces=tool_call_chunks(CALL, CALL))) as upstream, \
            routed(upstream.url, local_text) as server:
        remote, remote_stop = streamed_blocks(server, "remote")
        local, local_stop = streamed_blocks(server, "claude-sonnet-4-5")
    strip = [{key: value for key, value in block.items() if key != "id"} for block in remote]
    assert strip == [{key: value for key, value in block.items() if key != "id"} for block in local]
    assert len(remote) == 1 and remote[0]["input"] == {"x": 1.7976931348623157e308}  # finite, and once
    assert remote_stop == local_stop == "tool_use"


def test_a_remote_turn_in_flight_shows_in_the_status():
    reply = Reply(pieces=openai_text_stream("thinking it over", finish=None, done=False),
                  trickle=sse(openai_chunk({"content": "."})), trickle_every=0.1, trickle_limit=600)
    with hostile_upstream(lambda request: reply) as upstream, routed(upstream.url, "local") as server:
        body = {"model": "remote", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.stream("POST", f"{server.url}/v1/messages", json=body, timeout=60) as response:
            lines = response.iter_lines()  # held: a generator dropped by `break` would close the response
            for line in lines:
                if "thinking it over" in line:
                    break
            status = httpx.get(f"{server.url}/mlxclaude/status").json()
        entry = next(entry for entry in status["in_flight"] if entry["backend"] == "gpu")
        assert entry["phase"] == "decode" and entry["output_tokens"] >= 1 and entry["request_kind"]
        gpu = next(backend for backend in status["backends"] if backend["name"] == "gpu")
        assert gpu["in_flight"] == 1
        wait_for(lambda: not httpx.get(f"{server.url}/mlxclaude/status").json()["in_flight"],
                 what="the remote turn gone from the status once the client left")


def test_a_server_with_no_local_model_answers_health_models_and_counts():
    toml = '[backends.gpu]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\n[routes]\n"*" = "gpu"\n'
    routing = parse_routing(tomllib.loads(toml), local_model=None)
    with live_server(None, routing=routing) as server:
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 200 and health.json() == {"status": "ok", "model": None, "backends": ["gpu"]}
        listed = httpx.get(f"{server.url}/v1/models").json()
        assert [(model["id"], model["display_name"]) for model in listed["data"]] == [("gpu", "gpu (openai)")]
        assert listed["object"] == "list" and listed["data"][0]["object"] == "model"  # OpenAI's shape too
        counted = httpx.post(f"{server.url}/v1/messages/count_tokens", json={
            "model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 400}]})
        assert counted.status_code == 200 and counted.json()["input_tokens"] > 50  # estimated: no tokenizer here
        status = httpx.get(f"{server.url}/mlxclaude/status").json()
        assert status["state"] == "ready" and "batch" not in status and status["model_path"] is None


def test_an_image_reaches_an_openai_engine_through_the_typed_request():
    """A screenshot in a tool result and one in the user's text: the typed request keeps them, and the one
    translation sends them as image parts in the user message after the tool results."""
    from support.upstreams import Answer, chat_completion, recording_upstream

    png = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    messages = [
        {"role": "user", "content": "what is on screen?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "set_value", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "captured"}, {"type": "image", "source": png}]},
            {"type": "text", "text": "and this one"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}]},
    ]
    with recording_upstream(lambda request: Answer(body=chat_completion({"content": "a login form"}))) as upstream, \
            routed(upstream.url, "local") as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = client.messages.create(model="remote", max_tokens=50, tools=[TOOL], messages=messages)
    assert reply.content[0].text == "a login form"
    sent = upstream.posts()[0].body["messages"]
    assert sent[-2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "captured"}
    assert sent[-1] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "and this one"},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}]}


def test_image_backend_serves_requests_with_images_the_routed_model_cannot_see():
    from support.upstreams import Answer, chat_completion, recording_upstream

    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with recording_upstream(lambda request: Answer(body=chat_completion({"content": "a cat"}))) as upstream:
        toml = f'[backends.eyes]\nkind = "openai"\nurl = "{upstream.url}/v1"\n[routes]\n"*" = "local"\n'
        routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
        with live_server(lambda: ScriptedBackend(lambda chat: "text only"), routing=routing,
                         image_backend="eyes") as server:
            client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
            seen = client.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=[
                {"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}])
            plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                           messages=[{"role": "user", "content": "hi"}])
    assert seen.content[0].text == "a cat" and plain.content[0].text == "text only"
    (post,) = upstream.posts()
    assert post.body["messages"][0]["content"][0]["type"] == "image_url"
