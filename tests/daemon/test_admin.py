"""GET /mlxclaude/status and POST /mlxclaude/shutdown on the real app (scripted engine, in-process)."""

from __future__ import annotations

import os
import threading

import httpx

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon import client
from mlxclaude.engine.backend import DeviceMemory
from mlxclaude.server.app import create_app
from support.live_server import LiveServer, free_port, live_server
from support.scripted_backend import ScriptedBackend


def test_status_and_shutdown_behind_the_token():
    with live_server(lambda: ScriptedBackend(lambda chat: "hello"), auth_token="tok") as server:
        assert httpx.get(f"{server.url}/mlxclaude/status").status_code == 401
        body = client.status(server.url, "tok")
        assert body["pid"] == os.getpid() and body["state"] == "ready" and body["model"] == "scripted"
        assert body["uptime_s"] >= 0 and body["requests_served"] == 0 and body["queued"] == 0
        assert body["context_length"] == 200_000 and body["memory"]["peak_rss_mb"] > 0
        assert client.health(server.url)["status"] == "ok"

        # without a callback (not the daemon) a shutdown is refused, Anthropic-shaped
        refused = httpx.post(f"{server.url}/mlxclaude/shutdown", headers={"x-api-key": "tok"})
        assert refused.status_code == 501 and refused.json()["type"] == "error"
        assert client.shutdown(server.url, "tok") is False

        called = threading.Event()
        server.app.state.shutdown_callback = called.set
        assert client.shutdown(server.url, "wrong") is False and not called.is_set()
        assert client.shutdown(server.url, "tok") is True
        assert called.wait(5)


def test_status_while_loading_names_what_it_loads():
    release = threading.Event()

    def slow_load():
        release.wait(10)
        return ScriptedBackend(lambda chat: "x")

    server = LiveServer(create_app(ServerSettings(model="/models/big"), slow_load), free_port())
    server._thread.start()
    try:
        for _ in range(200):
            body = client.status(server.url)
            if body is not None:
                break
            threading.Event().wait(0.05)
        assert body["state"] == "loading" and body["model_path"] == "/models/big" and "model" not in body
        assert client.health(server.url)["status"] == "loading"
    finally:
        release.set()
        server.stop()


def test_unreachable_daemon_reads_as_none():
    url = f"http://127.0.0.1:{free_port()}"
    assert client.health(url) is None and client.status(url) is None and client.shutdown(url) is False


class HoldsMemory(ScriptedBackend):
    def memory_facts(self) -> DeviceMemory:
        return DeviceMemory(active_bytes=2 * 1024**3, peak_bytes=3 * 1024**3, cache_bytes=None)


def test_status_shows_the_backends_memory_and_the_server_closes_it():
    backend = HoldsMemory(lambda chat: "hello")
    with live_server(lambda: backend, auth_token="tok") as server:
        memory = client.status(server.url, "tok")["memory"]
        assert memory["mlx_active_gb"] == 2.0 and memory["mlx_peak_gb"] == 3.0
        assert "mlx_cache_gb" not in memory  # a figure the backend does not keep is left out
        assert not backend.closed
    assert backend.closed  # at shutdown, after the worker stopped
