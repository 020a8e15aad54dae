"""`mlxclaude serve`: argument checks, binding before the model loads, stopping on SIGINT."""

from __future__ import annotations

import signal
import socket
import time

import httpx
import pytest

from support.cli_app import run_cli
from support.daemon_env import Env


def model_dir(tmp_path):
    """A directory that names a model (its config.json); nothing here loads it."""
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_non_loopback_bind_without_token_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_AUTH_TOKEN", raising=False)
    model_dir(tmp_path)
    code, out, err = run_cli("serve", "--model", str(tmp_path), "--host", "0.0.0.0")
    assert code == 2 and out == ""
    assert "refusing to bind 0.0.0.0 without a token" in err and "--auth-token" in err


def test_missing_model_directory_is_one_line_with_a_hint(tmp_path):
    code, _, err = run_cli("serve", "--model", str(tmp_path / "nope"))
    assert code == 1
    assert err.splitlines()[0].startswith("error: model directory not found")
    assert err.splitlines()[1].startswith("hint: ")


def test_a_directory_without_a_model_fails_at_once(tmp_path):
    code, _, err = run_cli("serve", "--model", str(tmp_path))
    assert code == 1 and err.splitlines()[0] == f"error: {tmp_path.resolve()} holds no model: it has no config.json"
    assert "mlxclaude models import FILE.gguf" in err.splitlines()[1]


def test_no_model_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_MODEL", raising=False)
    code, _, err = run_cli("serve")
    assert code == 2 and "no model given" in err


def test_a_busy_port_fails_before_the_model_loads(tmp_path, monkeypatch):
    from mlxclaude.daemon import serve

    monkeypatch.setattr(serve, "mlx_backend_loader", lambda *_, **__: pytest.fail("the model was to be loaded"))
    model_dir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli("serve", "--model", str(tmp_path), "--port", str(port))
    assert code == 1 and out == ""
    assert err.splitlines() == [f"error: cannot bind 127.0.0.1:{port}: Address already in use",
                                "hint: stop what is using it, or pick another port: mlxclaude config set port N "
                                "(or --port N)"]


def test_serves_on_the_socket_it_bound(tmp_path, isolated_home):
    """A model directory with an empty config: the server answers (the load fails on the worker thread), then
    stops on SIGINT."""
    env = Env(isolated_home, model_dir(tmp_path))
    proc = env.popen("serve", "--model", str(tmp_path), "--port", str(env.port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{env.port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
                time.sleep(0.1)
        assert health.json()["status"] in ("loading", "failed")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
