"""Work that grows with a request never blocks the event loop, on the real MLX engine (tiny model): parsing a
huge body and matching a huge stop list run on other threads than the server's event loop, and /health keeps
answering meanwhile. A property, not a time limit: on a loaded machine a time limit fails for the wrong reason
(bench/ measures the latency)."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from mlxclaude.parsing.stops import StopMatcher
from mlxclaude.protocol.limits import MAX_STOP_SEQUENCE_CHARS, MAX_STOP_SEQUENCES
from mlxclaude.server import messages
from support.live_server import live_server

pytestmark = pytest.mark.mlx
CONTEXT = 4096


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    settings = ServerSettings(model=str(tiny_model_dir), context_limit=CONTEXT)
    with live_server(mlx_backend_loader(settings), context_limit=CONTEXT) as live:
        yield live


def threads_of(monkeypatch, owner, name: str) -> list[threading.Thread]:
    """Record the thread of every call of `owner.name`."""
    seen: list[threading.Thread] = []
    original = getattr(owner, name)

    def recording(*args, **kwargs):
        seen.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return seen


def healthy_while(server, send) -> tuple[int, httpx.Response]:
    """Send one request in a thread; meanwhile poll /health. How many /health answers came, and the response."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", send()))
    answered = 0
    with httpx.Client(base_url=server.url, timeout=60) as http:
        thread.start()
        while thread.is_alive():
            assert http.get("/health").status_code == 200
            answered += 1
    thread.join()
    return answered, result["response"]


def test_a_30_mb_body_is_parsed_off_the_event_loop(server, monkeypatch):
    parsed_on = threads_of(monkeypatch, messages, "prepare_create")
    content = "lorem ipsum dolor sit amet " * (30 * 1024 * 1024 // 27)
    body = json.dumps({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": content}]}).encode()

    def send():
        return httpx.post(f"{server.url}/v1/messages", content=body, timeout=300,
                          headers={"content-type": "application/json"})

    answered, response = healthy_while(server, send)
    assert response.status_code == 400 and "prompt is too long" in response.json()["error"]["message"]
    assert parsed_on and server.event_loop_thread not in parsed_on
    assert answered >= 1


def test_the_largest_stop_list_is_matched_off_the_event_loop(server, monkeypatch):
    matched_on = threads_of(monkeypatch, StopMatcher, "feed")
    stops = [f"{i:05d}" + "q" * (MAX_STOP_SEQUENCE_CHARS - 5) for i in range(MAX_STOP_SEQUENCES)]
    body = {"model": "m", "max_tokens": 64, "stream": True, "stop_sequences": stops,
            "messages": [{"role": "user", "content": "Write a long story."}]}

    def send():
        return httpx.post(f"{server.url}/v1/messages", json=body, timeout=300)

    answered, response = healthy_while(server, send)
    assert response.status_code == 200 and "event: message_stop" in response.text
    assert matched_on and server.event_loop_thread not in matched_on
    assert answered >= 1
