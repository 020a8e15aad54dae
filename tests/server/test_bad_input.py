"""Hostile and unlucky input against the real server on the real MLX engine (tiny model).

Table-driven over both endpoints, streaming and not: each bad request gets its status and an
Anthropic-shaped error, and afterwards the server still answers /health and a sampled request, on
the same keep-alive connection.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.mlx
BODY_LIMIT = 256 * 1024
CONTEXT = 4096
TOOL = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    settings = ServerSettings(model=str(tiny_model_dir), context_limit=CONTEXT)
    with live_server(mlx_backend_loader(settings), context_limit=CONTEXT, max_body_bytes=BODY_LIMIT) as live:
        yield live


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=1)) as client:
        yield client


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], **overrides}


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()


# (case id, request body bytes, expected status, expected error type); every case is sent to
# /v1/messages (streaming and not) and to count_tokens, unless its id starts with the one endpoint
# ("messages:": generation fields, which count_tokens ignores as Anthropic's does).
CASES = [
    ("not-json", b"{not json", 400, "invalid_request_error"),
    ("not-utf8", b'{"model": "\xff\xfe"}', 400, "invalid_request_error"),
    ("nested-2000", b'{"model":"m","max_tokens":8,"metadata":' + b"[" * 2000 + b"]" * 2000 + b"}", 400,
     "invalid_request_error"),
    ("nested-100-in-content", raw(body(messages=[{"role": "user", "content": nested(100)}])), 400,
     "invalid_request_error"),
    ("lone-surrogate", b'{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"a\\ud800b"}]}', 400,
     "invalid_request_error"),
    ("lone-surrogate-in-key", b'{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"a"}],'
                              b'"x\\udc00":1}', 400, "invalid_request_error"),
    ("messages:deep-metadata-user-id", raw(body(metadata={"user_id": nested(50)})), 400, "invalid_request_error"),
    ("messages-empty", raw(body(messages=[])), 400, "invalid_request_error"),
    ("messages:max-tokens-0", raw(body(max_tokens=0)), 400, "invalid_request_error"),
    ("messages:max-tokens-string", raw(body(max_tokens="100")), 400, "invalid_request_error"),
    ("messages:max-tokens-true", raw(body(max_tokens=True)), 400, "invalid_request_error"),
    ("messages:temperature-negative", raw(body(temperature=-1)), 400, "invalid_request_error"),
    ("messages:temperature-5", raw(body(temperature=5)), 400, "invalid_request_error"),
    ("messages:top-p-2", raw(body(top_p=2)), 400, "invalid_request_error"),
    ("messages:top-k-negative", raw(body(top_k=-1)), 400, "invalid_request_error"),
    ("thinking-budget-negative", raw(body(thinking={"type": "enabled", "budget_tokens": -1})), 400,
     "invalid_request_error"),
    ("tool-choice-missing-tool", raw(body(tools=[TOOL], tool_choice={"type": "tool", "name": "Nope"})), 400,
     "invalid_request_error"),
    ("tool-choice-any-no-tools", raw(body(tool_choice={"type": "any"})), 400, "invalid_request_error"),
    ("duplicate-tool-names", raw(body(tools=[TOOL, TOOL])), 400, "invalid_request_error"),
    ("empty-tool-name", raw(body(tools=[{**TOOL, "name": ""}])), 400, "invalid_request_error"),
    ("messages:too-many-stop-sequences", raw(body(stop_sequences=[f"s{i}" for i in range(1001)])), 400,
     "invalid_request_error"),
    ("messages:stop-sequence-too-long", raw(body(stop_sequences=["x" * 1001])), 400, "invalid_request_error"),
    ("body-over-limit", raw(body(messages=[{"role": "user", "content": "y" * BODY_LIMIT}])), 413,
     "request_too_large"),
    ("messages:prompt-far-too-long", raw(body(messages=[{"role": "user", "content": "word " * 30000}])), 400,
     "invalid_request_error"),
    ("messages:top-k-above-vocab", raw(body(top_k=10**9, temperature=1.0)), 200, None),
    ("messages:deep-json-in-user-id-string",
     raw(body(metadata={"user_id": '{"session_id":' + "[" * 5000 + "]" * 5000 + "}"})), 200, None),
    ("messages:many-long-stop-sequences", raw(body(stop_sequences=[f"{i:04d}" + "z" * 200 for i in range(1000)])),
     200, None),
]


def targets(case_id: str) -> list[tuple[str, bool]]:
    endpoint = case_id.split(":")[0] if ":" in case_id else None
    found = []
    if endpoint in (None, "messages"):
        found += [("/v1/messages", False), ("/v1/messages", True)]
    if endpoint in (None, "count"):
        found.append(("/v1/messages/count_tokens", False))
    return found


def with_stream(data: bytes, stream: bool) -> bytes:
    """The body with "stream": true spliced in (the body may be invalid JSON on purpose, so no re-encoding)."""
    if not stream or not data.startswith(b"{") or data.startswith(b"{not"):
        return data
    return b'{"stream":true,' + data[1:]


def local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text[:500]
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == error_type
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert payload["request_id"] == response.headers["request-id"]


def assert_still_serving(http: httpx.Client, port: int | None) -> None:
    health = http.get("/health")
    assert health.status_code == 200
    if port is not None:
        assert local_port(health) == port, "the keep-alive connection was dropped"
    sampled = http.post("/v1/messages", json=body(temperature=1.0, top_k=40, top_p=0.9, max_tokens=4))
    assert sampled.status_code == 200, sampled.text[:500]
    assert sampled.json()["type"] == "message"


@pytest.mark.parametrize(("case_id", "data", "status", "error_type"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_corpus(http, case_id, data, status, error_type):
    for path, stream in targets(case_id):
        response = http.post(path, content=with_stream(data, stream), headers={"content-type": "application/json"})
        if error_type is None:
            assert response.status_code == status, response.text[:500]
            if stream:
                assert "event: message_stop" in response.text and "event: error" not in response.text
        else:
            assert_anthropic_error(response, status, error_type)
        assert_still_serving(http, None if status == 413 else local_port(response))


def test_chunked_body_over_the_limit_is_413(http):
    def chunks():
        yield b'{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"'
        for _ in range(BODY_LIMIT // 4096 + 2):
            yield b"z" * 4096
        yield b'"}]}'

    response = http.post("/v1/messages", content=chunks(), headers={"content-type": "application/json"})
    assert_anthropic_error(response, 413, "request_too_large")
    assert_still_serving(http, None)


def test_invalid_content_length_is_400(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: -5\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.split(b"\r\n", 1)[0].split(b" ")[1] in (b"400",)


# --- values outside the API's enums: its 400 and its wording -------------------------------------------

ENUM_CASES = [
    ({"thinking": {"type": "adaptive", "display": "full"}}, "thinking.display: Input should be 'summarized' or 'omitted'"),
    ({"output_config": {"effort": "extreme"}},
     "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"),
    ({"cache_control": {"type": "persistent"}}, "cache_control.type: Input should be 'ephemeral'"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                 "cache_control": {"type": "ephemeral", "ttl": "2h"}}]}]},
     "messages.0.content.0.text.cache_control.ttl: Input should be '5m' or '1h'"),
    ({"service_tier": "priority"}, "service_tier: Input should be 'auto' or 'standard_only'"),
    ({"container": 5}, "container: Input should be a valid string"),
    ({"messages": [{"role": "user", "content": "hi"},
                   {"role": "assistant", "content": [{"type": "redacted_thinking"}]}]},
     "messages.1.content.0.redacted_thinking.data: Field required"),
]


@pytest.fixture(scope="module")
def thinking_server():
    with live_server(lambda: ScriptedBackend(lambda chat: "<think>a plan</think>the answer")) as server:
        yield server


@pytest.mark.parametrize("extra,message", ENUM_CASES, ids=[message.split(":")[0] for _, message in ENUM_CASES])
def test_values_outside_the_apis_enums_are_its_400(thinking_server, extra, message):
    import anthropic

    client = anthropic.Anthropic(base_url=thinking_server.url, api_key="unused", max_retries=0)
    body = {"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(**body)
    assert raised.value.body["error"] == {"type": "invalid_request_error", "message": message}


def test_the_apis_own_values_are_accepted_and_the_reply_has_the_newer_fields(thinking_server):
    import anthropic

    client = anthropic.Anthropic(base_url=thinking_server.url, api_key="unused", max_retries=0)
    reply = client.messages.create(
        model="claude-x", max_tokens=64, service_tier="auto", container="c-1",
        thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "xhigh"},
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[{"role": "user", "content": "hi"}])
    raw = client.messages.with_raw_response.create(
        model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}]).http_response.json()
    assert [block.type for block in reply.content][-1] == "text"
    thinking = [block for block in reply.content if block.type == "thinking"]
    assert thinking and all(block.thinking == "" and block.signature for block in thinking)  # "omitted"
    assert raw["stop_details"] is None and raw["container"] is None
    assert raw["usage"]["server_tool_use"] is None and raw["usage"]["output_tokens_details"] is None
    assert raw["usage"]["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
