"""`up --model ORG/NAME` on a slow link: the CLI downloads in the foreground, with the progress bar, before the
daemon exists; the daemon is handed the local copy and the start timeout only runs from its spawn. And a
failed start prints the daemon's own error and hint, not a log path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mlxclaude.daemon import manager
from support.cli_app import run_cli
from support.fake_hub import FakeHub
from support.live_server import free_port

pytestmark = pytest.mark.mlx

REPO = "mlx-community/Tiny-Slow-Link"


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def down():
    yield
    run_cli("down")


def test_up_downloads_first_with_progress_then_starts_the_daemon_on_the_local_copy(hub, tiny_model_dir, monkeypatch,
                                                                                    down):
    hub.add_repo(REPO, tiny_model_dir)
    weights = (Path(tiny_model_dir) / "model.safetensors").stat().st_size
    hub.throttle(REPO, "model.safetensors", weights / 2.5)  # a slow link: 2.5 s for the weights
    events: list[tuple[str, float, object]] = []
    requests_at_spawn: list[int] = []
    spawn, wait_ready = manager.spawn, manager.wait_ready

    def recording_spawn(settings, model_name):
        events.append(("spawn", time.monotonic(), settings.model))
        requests_at_spawn.append(len(hub.requests))
        return spawn(settings, model_name)

    def recording_wait(pid, timeout, progress, proc=None):
        events.append(("wait", time.monotonic(), timeout))
        return wait_ready(pid, timeout, progress, proc)

    monkeypatch.setattr(manager, "spawn", recording_spawn)
    monkeypatch.setattr(manager, "wait_ready", recording_wait)
    started = time.monotonic()
    result = run_cli("up", "--model", REPO, "--port", str(free_port()))

    assert result.code == 0, result.err
    assert REPO in result.err and "MB" in result.err and "files" in result.err  # the bar, in the foreground
    assert f"downloaded {REPO} → " in result.err
    (_, spawned_at, model_arg), (_, waited_at, timeout) = events
    assert hub.gets("model.safetensors") and spawned_at - started >= 2.0  # the slow download came first ...
    snapshot = Path(model_arg)
    assert snapshot.is_dir() and snapshot.parent.name == "snapshots"  # ... and the daemon got the local copy
    assert (snapshot / "model.safetensors").read_bytes() == (Path(tiny_model_dir) / "model.safetensors").read_bytes()
    assert waited_at >= spawned_at and timeout == manager.START_TIMEOUT  # the whole timeout, from the spawn
    state = json.loads(run_cli("status", "--json").out)
    assert state["state"] == "ready" and state["model"] == REPO
    assert Path(state["model_path"]) == snapshot
    assert len(hub.requests) == requests_at_spawn[0]  # the daemon never went to the hub


def test_a_model_that_fails_to_load_shows_the_daemons_error_and_hint(tmp_path, down):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    result = run_cli("up", "--model", str(broken), "--port", str(free_port()))
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[-2].startswith("error: model failed to load: ")
    assert lines[-1] == f"hint: `mlxclaude models check {broken}` says what is wrong with it"


def test_a_directory_that_holds_no_model_fails_before_any_daemon_starts(tmp_path, down):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("up", "--model", str(empty), "--port", str(free_port()))
    assert result.code == 1 and f"{empty.resolve()} holds no model: it has no config.json" in result.err
    assert run_cli("status").code == 3  # nothing was started


def test_the_daemons_logged_error_and_hint_are_what_up_prints(tmp_path, tiny_model_dir, monkeypatch):
    """A daemon that logs an error event and exits: its message and hint, read from the structured log."""
    import sys

    from mlxclaude import paths
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.errors import MlxClaudeError

    log = paths.daemon_log_file()
    script = (
        "import json, os, sys\n"
        f"log = open({str(log)!r}, 'a')\n"
        "log.write(json.dumps({'level': 'info', 'event': 'daemon_start', 'pid': os.getpid()}) + '\\n')\n"
        "log.write(json.dumps({'level': 'error', 'event': 'model_load_failed', 'message': 'model failed to load: "
        "the hub said no', 'hint': 'set HF_TOKEN'}) + '\\n')\n"
        "log.close(); sys.exit(1)\n"
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps({"level": "error", "event": "model_load_failed", "message": "an older daemon's"}) + "\n")
    monkeypatch.setattr(manager, "daemon_command", lambda settings, name: [sys.executable, "-c", script])
    with pytest.raises(MlxClaudeError) as caught:
        manager.start(ServerSettings(model=str(tiny_model_dir), port=free_port()), timeout=20)
    assert (caught.value.message, caught.value.hint) == ("model failed to load: the hub said no", "set HF_TOKEN")
