"""`mlxclaude serve` argument checks and the CLI's import discipline."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from support.cli_app import run_main
from support.daemon_env import Env


def test_non_loopback_bind_without_token_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_AUTH_TOKEN", raising=False)
    code, out, err = run_main(["serve", "--model", str(tmp_path), "--host", "0.0.0.0"], capsys)
    assert code == 2 and out == ""
    assert "refusing to bind 0.0.0.0 without a token" in err and "--auth-token" in err


def test_missing_model_directory_is_one_line_with_a_hint(tmp_path, capsys):
    code, _, err = run_main(["serve", "--model", str(tmp_path / "nope")], capsys)
    assert code == 1
    assert err.splitlines()[0].startswith("error: model directory not found")
    assert err.splitlines()[1].startswith("hint: ")


def test_no_model_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_MODEL", raising=False)
    code, _, err = run_main(["serve"], capsys)
    assert code == 2 and "no model given" in err


def test_help_imports_nothing_heavy():
    probe = (
        "import sys\n"
        "from mlxclaude.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('mlx', 'mlx_lm', 'fastapi', 'uvicorn', 'transformers', 'starlette') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout, result.stdout
    assert "serve" in result.stdout


def test_a_busy_port_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from mlxclaude.server import app

    monkeypatch.setattr(app, "mlx_backend_loader", lambda settings: pytest.fail("the model was to be loaded"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_main(["serve", "--model", str(tmp_path), "--port", str(port)], capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [f"error: cannot bind 127.0.0.1:{port}: Address already in use",
                                "hint: use --port N or stop what is using it"]


def test_serves_on_the_socket_it_bound(tmp_path, isolated_home):
    """An empty model directory: the server answers (the load fails on the worker thread), then stops on SIGINT."""
    env = Env(isolated_home, tmp_path)
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
