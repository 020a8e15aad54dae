"""Faults that must stay one request's problem: internal errors, a full queue, shutdown mid-stream.

A scripted engine makes each fault happen exactly when the test wants it; the server, protocol and
parser are the real ones.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

ASK = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


class BrokenRender(ScriptedBackend):
    def render(self, chat):
        if "boom" in json.dumps(chat.messages):
            raise RuntimeError("a bug in the renderer")
        return super().render(chat)


def local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_internal_error_is_a_logged_500_and_the_connection_survives(capfd):
    backend = BrokenRender(lambda chat: "fine")
    with live_server(lambda: backend) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        broken = http.post("/v1/messages", json={**ASK, "messages": [{"role": "user", "content": "boom"}]})
        assert broken.status_code == 500
        assert broken.json()["error"]["type"] == "api_error"
        after = http.post("/v1/messages", json=ASK)
        assert after.status_code == 200 and after.json()["content"][0]["text"] == "fine"
        assert local_port(after) == local_port(broken), "the keep-alive connection was dropped after the 500"
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    errors = [record for record in logged if record["event"] == "internal_error"]
    assert errors and "RuntimeError: a bug in the renderer" in errors[0]["traceback"]


@pytest.mark.parametrize("stream", [False, True])
def test_beyond_the_queue_is_529_before_any_stream_starts(stream):
    release = threading.Event()
    backend = ScriptedBackend(lambda chat: release.wait(30) and "done")
    with live_server(lambda: backend, max_queue=1) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        holder = threading.Thread(target=http.post, args=("/v1/messages",), kwargs={"json": ASK})
        holder.start()
        deadline = time.time() + 10
        while server.worker.pending < 1 and time.time() < deadline:
            time.sleep(0.01)
        with httpx.Client(base_url=server.url, timeout=30) as other:
            refused = other.post("/v1/messages", json={**ASK, "stream": stream})
        release.set()
        holder.join(30)
    assert refused.status_code == 529
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert refused.headers.get("retry-after")


def shut_down_after(backend: ScriptedBackend, event: str, body: dict, **settings) -> tuple[list[str], dict]:
    """Stream `body`, shut the server down once `event` has come, and read the rest: its event names, and the
    last event's data."""
    with live_server(lambda: backend, **settings) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        with http.stream("POST", "/v1/messages", json=body) as response:
            lines = response.iter_lines()
            for line in lines:
                if line == f"event: {event}":
                    break
            server.app.state.mlxclaude.begin_shutdown()
            rest = list(lines)
    assert backend.cancelled.wait(5), "generation went on after the stream ended"
    last = json.loads(next(line for line in reversed(rest) if line.startswith("data: "))[6:])
    return [line[7:] for line in rest if line.startswith("event: ")], last


def test_shutdown_ends_an_open_stream_with_an_error_event():
    backend = ScriptedBackend(lambda chat: "word " * 2000, chunk_size=5, delay=0.01)
    events, last = shut_down_after(backend, "content_block_delta", {**ASK, "max_tokens": 4000, "stream": True})
    assert events[-1] == "error", events[-5:]
    assert last["error"]["type"] == "overloaded_error"


def test_shutdown_ends_a_stream_waiting_on_a_silent_engine_at_once():
    """The stream waits on its job's queue alone; the shutdown puts its marker there rather than waiting for the
    engine's next token (minutes away here) or the next ping (ten minutes)."""
    backend = ScriptedBackend(lambda chat: "late", chunk_size=5, delay=300)
    events, last = shut_down_after(backend, "message_start", {**ASK, "stream": True}, ping_interval=600)
    assert events == ["error"]
    assert last["error"]["type"] == "overloaded_error"
