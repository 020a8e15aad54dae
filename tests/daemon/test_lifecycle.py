"""`mlxclaude up | status | down | restart` against real daemon processes and the tiny MLX model."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.daemon_env import Env, daemon_pids_under, wait_gone
from support.live_server import free_port

pytestmark = pytest.mark.mlx


@pytest.fixture
def env(tmp_path, tiny_model_dir):
    home = (tmp_path / "home").resolve()
    env = Env(home, tiny_model_dir)
    yield env
    # stop whatever a test left running, then kill stragglers outright
    env.cli("down", timeout=30)
    for pid in daemon_pids_under(home):
        os.kill(pid, signal.SIGKILL)


def pid_printed(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("pid"))
    return int(line.split()[-1])


def test_up_status_request_down(env):
    started = time.monotonic()
    result = env.up()
    up_seconds = time.monotonic() - started
    assert f"http://127.0.0.1:{env.port}" in result.stdout and env.model.name in result.stdout
    state = env.state()
    assert pid_printed(result.stdout) == state["pid"] and state["port"] == env.port
    assert oct(env.state_file.stat().st_mode & 0o777) == "0o600" and state["token"]
    assert set(state) >= {"pid", "url", "host", "port", "model", "model_path", "version", "started_at", "log_path"}

    status = env.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"] is True and info["state"] == "ready" and info["pid"] == state["pid"]
    assert info["model"] == env.model.name and info["context_length"] > 0 and info["requests_served"] == 0
    assert "token" not in info and info["memory"]
    assert env.cli("status").returncode == 0

    # the admin routes sit behind the token like everything else
    assert httpx.get(f"{state['url']}/mlxclaude/status").status_code == 401
    assert httpx.post(f"{state['url']}/mlxclaude/shutdown").status_code == 401

    reply = httpx.post(f"{state['url']}/v1/messages", timeout=60, headers={"x-api-key": state["token"]},
                       json={"model": "claude-local", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
    lines = [json.loads(line) for line in env.daemon_log.read_text().splitlines()]
    finish = [line for line in lines if line["event"] == "request_finish"]
    assert finish and finish[0]["kind"] == "perf" and finish[0]["prompt_tokens"] > 0
    assert json.loads(env.cli("status", "--json").stdout)["requests_served"] == 1

    again = env.cli("up")  # no --model: whatever runs is fine
    assert again.returncode == 0 and "already running" in again.stderr
    assert pid_printed(again.stdout) == state["pid"]
    other = env.home.parent / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    switch = env.cli("up", "--model", str(other))  # naming another model is not a no-op
    assert switch.returncode == 1 and "already running with" in switch.stderr
    assert f"mlxclaude restart --model {other}" in switch.stderr

    down = env.cli("down")
    assert down.returncode == 0 and "stopped" in down.stderr
    assert wait_gone(state["pid"]) and not env.state_file.exists()
    stopped = env.cli("status")
    assert stopped.returncode == 3 and "not running" in stopped.stderr and stopped.stdout == ""
    assert json.loads(env.cli("status", "--json").stdout) == {"running": False}
    events = [json.loads(line)["event"] for line in env.daemon_log.read_text().splitlines()]
    assert events[-1] == "daemon_stop"

    down_again = env.cli("down")
    assert down_again.returncode == 0 and "not running" in down_again.stderr
    print(f"up took {up_seconds:.2f}s")


def test_kill_9_then_up_again_then_restart_then_sigterm(env):
    env.up()
    killed = env.state()["pid"]
    os.kill(killed, signal.SIGKILL)
    assert wait_gone(killed)
    assert env.state_file.exists()  # nobody removed it
    status = env.cli("status")
    assert status.returncode == 3
    assert not env.state_file.exists()  # the reader cleaned up the stale file

    again = env.up()
    assert "already running" not in again.stderr
    first = env.state()
    assert first["pid"] != killed

    restarted = env.cli("restart")  # same model and port as the running one
    assert restarted.returncode == 0, restarted.stderr
    second = env.state()
    assert second["pid"] != first["pid"] and second["port"] == first["port"] == env.port
    assert second["model_path"] == first["model_path"] and wait_gone(first["pid"])
    assert f"http://127.0.0.1:{env.port}" in restarted.stdout

    os.kill(second["pid"], signal.SIGTERM)
    assert wait_gone(second["pid"])
    assert not env.state_file.exists()  # the daemon removed its own file on the way out
    assert json.loads(env.daemon_log.read_text().splitlines()[-1])["event"] == "daemon_stop"

    revived = env.cli("restart", "--port", str(env.port))  # down, nothing configured: the model it last served
    assert revived.returncode == 0, revived.stderr
    assert env.state()["model_path"] == second["model_path"]
    assert env.cli("down").returncode == 0


def test_two_concurrent_ups_start_one_daemon_by_model_name(env):
    imported = env.home / "data" / "models" / "tiny-local"  # a name `mlxclaude models list` shows
    imported.parent.mkdir(parents=True)
    imported.symlink_to(env.model, target_is_directory=True)
    procs = [env.popen("up", "--model", "tiny-local", "--port", str(env.port)) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    state = env.state()
    assert {pid_printed(stdout) for stdout, _ in outputs} == {state["pid"]}
    assert sum("already running" in stderr for _, stderr in outputs) == 1
    if Path("/proc").is_dir():
        assert daemon_pids_under(env.home) == [state["pid"]]
    assert state["model"] == "tiny-local" and Path(state["model_path"]).resolve() == env.model.resolve()
    info = json.loads(env.cli("status", "--json").stdout)
    assert info["model"] == "tiny-local" and info["state"] == "ready"


def test_busy_port_is_one_line_naming_the_port(env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = env.cli("up", "--model", str(env.model), "--port", str(port))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: port {port} is already in use on 127.0.0.1",
        "hint: stop what is using it, or pick another port: mlxclaude config set port N (or up --port N)"]
    assert not env.state_file.exists() and not (env.home / "log" / "daemon.stderr.log").exists()


def test_no_model_and_bad_model(env):
    result = env.cli("up")  # HF_HUB_OFFLINE is set here: no download is offered, the offline ways are named
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == \
        "error: no model configured, and the Hugging Face hub cannot be reached to download one"
    assert "mlxclaude up --model" in result.stderr and "mlxclaude models import FILE.gguf" in result.stderr

    broken = env.home.parent / "not-a-model"
    broken.mkdir()
    result = env.cli("up", "--model", str(broken), "--port", str(env.port))
    assert result.returncode == 1  # at once: nothing starts for a directory that holds no model
    assert result.stderr.startswith(f"error: {broken.resolve()} holds no model: it has no config.json")
    assert not env.state_file.exists() and daemon_pids_under(env.home) == []

    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    result = env.cli("up", "--model", str(broken), "--port", str(env.port))
    assert result.returncode == 1
    assert "error: model failed to load:" in result.stderr
    assert not env.state_file.exists() and daemon_pids_under(env.home) == []


def test_a_daemon_that_dies_early_is_reported_with_its_last_lines(tmp_path, monkeypatch, tiny_model_dir):
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon import manager
    from mlxclaude.errors import MlxClaudeError

    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path))
    settings = ServerSettings(model=str(tiny_model_dir), port=free_port())
    crash = "import sys; print('loading things'); print('Traceback: it broke', file=sys.stderr); sys.exit(7)"
    monkeypatch.setattr(manager, "daemon_command", lambda settings, name: [sys.executable, "-c", crash])
    with pytest.raises(MlxClaudeError) as caught:
        manager.start(settings, timeout=20)
    assert "exited with code 7" in caught.value.message and "Traceback: it broke" in caught.value.message
    assert "daemon.stderr.log" in caught.value.hint

    says_why = "import sys; print('error: cannot bind 127.0.0.1:1: nope\\nhint: use --port N', file=sys.stderr); sys.exit(1)"
    monkeypatch.setattr(manager, "daemon_command", lambda settings, name: [sys.executable, "-c", says_why])
    with pytest.raises(MlxClaudeError) as caught:
        manager.start(settings, timeout=20)
    assert caught.value.message == "cannot bind 127.0.0.1:1: nope" and caught.value.hint == "use --port N"
