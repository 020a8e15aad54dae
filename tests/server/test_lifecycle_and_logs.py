"""/health while loading, request logs, and how a failed load is reported."""

from __future__ import annotations

import json
import threading

import anthropic
import httpx
import pytest

from mlxclaude import logs
from mlxclaude.config.registry import ServerSettings
from mlxclaude.server.app import create_app
from support.live_server import LiveServer, free_port
from support.scripted_backend import ScriptedBackend


def start_unready(load):
    server = LiveServer(create_app(ServerSettings(), load), free_port())
    server._thread.start()
    for _ in range(100):
        try:
            httpx.get(f"{server.url}/health", timeout=1)
            return server
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    raise TimeoutError


def test_health_says_loading_until_the_model_is_ready():
    release = threading.Event()
    backend = ScriptedBackend(lambda chat: "ready now")

    def slow_load():
        release.wait(10)
        return backend

    server = start_unready(slow_load)
    try:
        response = httpx.get(f"{server.url}/health")
        assert response.status_code == 503 and response.json()["status"] == "loading"
        assert httpx.head(f"{server.url}/").status_code == 200
        client = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 529  # Claude Code retries overloaded errors
        release.set()
        for _ in range(100):
            if httpx.get(f"{server.url}/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["model"] == "scripted"
    finally:
        release.set()
        server.stop()


def test_failed_load_is_reported_by_health():
    def broken():
        raise RuntimeError("weights are corrupt")

    server = start_unready(broken)
    try:
        for _ in range(50):
            body = httpx.get(f"{server.url}/health").json()
            if body["status"] == "failed":
                break
            threading.Event().wait(0.05)
        assert body == {"status": "failed", "error": "weights are corrupt"}
    finally:
        server.stop()


def test_each_request_logs_a_start_and_a_perf_line(tmp_path):
    log_file = tmp_path / "server.jsonl"
    logs.configure(log_file, echo=False)
    backend = ScriptedBackend(lambda chat: "logged reply")
    server = LiveServer(create_app(ServerSettings(), lambda: backend), free_port()).start()
    try:
        response = httpx.post(f"{server.url}/v1/messages",
                              headers={"x-claude-code-session-id": "sess-42"},
                              json={"model": "claude-x", "max_tokens": 50, "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
    finally:
        server.stop()
        logs.configure(None)
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    start = next(r for r in records if r["event"] == "request_start")
    finish = next(r for r in records if r["event"] == "request_finish")
    assert start["session"] == finish["session"] == "sess-42"
    assert start["request_id"] == finish["request_id"] == response.headers["request-id"]
    assert finish["kind"] == "perf" and finish["request_kind"] == "side"
    for field in ("prompt_tokens", "cached_tokens", "new_tokens", "output_tokens", "ttft_s", "prefill_tps",
                  "decode_tps", "peak_memory_gb", "stop_reason"):
        assert field in finish, field
    assert finish["output_tokens"] > 0
