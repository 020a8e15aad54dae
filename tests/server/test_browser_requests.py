"""A token-less server on loopback answers programs on this machine, not web pages (cross-origin requests,
DNS rebinding); with a token, the token decides."""

from __future__ import annotations

import httpx
import pytest

from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

ASK = {"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def open_server():
    with live_server(lambda: ScriptedBackend(lambda chat: "ok")) as server:
        yield server


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"host": "evil.example"},
    {"host": "rebound.example:8765", "origin": "http://rebound.example:8765"},
    # DNS rebinding through names that only look like loopback
    {"host": "127.0.0.1.attacker.example:8765", "origin": "http://127.0.0.1.attacker.example:8765"},
    {"host": "127.0.0.1.nip.io:8765"},
    {"host": "localhost.evil"},
    {"host": "localhost.evil:8765", "origin": "http://localhost.evil:8765"},
    {"host": "127.1"},
    {"host": "[fe80::1]:8765"},
    {"host": "[::1"},
    {"origin": "http://127.0.0.1.attacker.example"},
])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/health"])
def test_web_pages_are_refused_without_a_token(open_server, headers, path):
    method = "GET" if path == "/health" else "POST"
    response = httpx.request(method, open_server.url + path, json=ASK, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


@pytest.mark.parametrize("headers", [{}, {"origin": "http://localhost:3000"}, {"host": "localhost"},
                                     {"origin": "http://127.0.0.1:5173"}, {"host": "127.0.0.2:80"},
                                     {"host": "[::1]:8765", "origin": "http://[::1]:8765"},
                                     {"host": "[::ffff:127.0.0.1]"}, {"host": "LOCALHOST."}])
def test_programs_on_this_machine_are_served(open_server, headers):
    response = httpx.post(open_server.url + "/v1/messages", json=ASK, headers=headers)
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "ok"


def test_with_a_token_the_token_decides():
    with live_server(lambda: ScriptedBackend(lambda chat: "ok"), auth_token="t0k") as server:
        foreign = {"origin": "https://elsewhere.example", "host": "gpu-box.lan"}
        assert httpx.post(server.url + "/v1/messages", json=ASK, headers=foreign).status_code == 401
        allowed = httpx.post(server.url + "/v1/messages", json=ASK, headers={**foreign, "x-api-key": "t0k"})
        assert allowed.status_code == 200
