"""Work that grows with a request never blocks the event loop: /health answers within a second while a
huge body is parsed or a huge stop list is matched, on the real MLX engine (tiny model)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from mlxclaude.protocol.limits import MAX_STOP_SEQUENCE_CHARS, MAX_STOP_SEQUENCES
from support.live_server import live_server

pytestmark = pytest.mark.mlx
CONTEXT = 4096


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    settings = ServerSettings(model=str(tiny_model_dir), context_limit=CONTEXT)
    with live_server(mlx_backend_loader(settings), context_limit=CONTEXT) as live:
        yield live


def slowest_health_while(server, send) -> tuple[float, httpx.Response]:
    """Send one request in a thread; meanwhile poll /health. The slowest /health and the request's response."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", send()))
    slowest = 0.0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        thread.start()
        while thread.is_alive():
            started = time.perf_counter()
            assert http.get("/health").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.02)
    thread.join()
    return slowest, result["response"]


def test_health_answers_while_a_30_mb_body_is_handled(server):
    content = "lorem ipsum dolor sit amet " * (30 * 1024 * 1024 // 27)
    body = json.dumps({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": content}]}).encode()

    def send():
        return httpx.post(f"{server.url}/v1/messages", content=body, timeout=120,
                          headers={"content-type": "application/json"})

    slowest, response = slowest_health_while(server, send)
    assert response.status_code == 400 and "prompt is too long" in response.json()["error"]["message"]
    assert slowest < 1.0, f"/health took {slowest:.2f} s"


def test_health_answers_while_the_largest_stop_list_is_matched(server):
    stops = [f"{i:05d}" + "q" * (MAX_STOP_SEQUENCE_CHARS - 5) for i in range(MAX_STOP_SEQUENCES)]
    body = {"model": "m", "max_tokens": 64, "stream": True, "stop_sequences": stops,
            "messages": [{"role": "user", "content": "Write a long story."}]}

    def send():
        return httpx.post(f"{server.url}/v1/messages", json=body, timeout=120)

    slowest, response = slowest_health_while(server, send)
    assert response.status_code == 200 and "event: message_stop" in response.text
    assert slowest < 1.0, f"/health took {slowest:.2f} s"
