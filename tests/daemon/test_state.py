"""The state file: atomic 0600 writes, and stale files cleaned up by readers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from mlxclaude.daemon.state import DaemonState, is_our_daemon, load_state_file, pid_alive, read_state, remove_state, url_for, write_state
from support import daemon_env


@pytest.fixture
def state_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path))
    from mlxclaude import paths

    return paths.state_file()


def sample(pid: int, **changes) -> DaemonState:
    values = dict(pid=pid, url="http://127.0.0.1:8765", host="127.0.0.1", port=8765, model="tiny",
                  model_path="/models/tiny", version="0.1.0", started_at=1.0, log_path="/logs/daemon.jsonl",
                  token="secret-token")
    values.update(changes)
    return DaemonState(**values)


@pytest.fixture
def fake_daemon():
    with daemon_env.fake_daemon() as proc:
        yield proc


def test_write_is_0600_and_round_trips(state_path):
    written = write_state(sample(1234))
    assert written == state_path
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    data = json.loads(state_path.read_text())
    assert data["pid"] == 1234 and data["port"] == 8765 and data["token"] == "secret-token"
    assert "already_running" not in data
    assert load_state_file() == sample(1234)
    assert [p.name for p in state_path.parent.iterdir()] == [state_path.name]  # no temp files left


def test_write_replaces_atomically_and_a_failed_write_keeps_the_old_file(state_path, monkeypatch):
    write_state(sample(1))
    inode = state_path.stat().st_ino
    write_state(sample(2))
    assert state_path.stat().st_ino != inode  # a new file renamed over the old one, never rewritten in place
    assert load_state_file().pid == 2

    def explode(*args, **kwargs):
        raise OSError("disk full")

    import mlxclaude.atomic

    monkeypatch.setattr(mlxclaude.atomic.os, "fsync", explode)  # fails after the temp file is written
    with pytest.raises(OSError):
        write_state(sample(3))
    assert load_state_file().pid == 2
    assert [p.name for p in state_path.parent.iterdir()] == [state_path.name]


def test_alive_pid_that_is_not_ours_is_stale(state_path):
    write_state(sample(os.getpid()))  # this test process is alive, but it is not a daemon
    assert pid_alive(os.getpid()) and not is_our_daemon(os.getpid())
    assert read_state() is None
    assert not state_path.exists()


def test_dead_pid_is_stale(state_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    write_state(sample(proc.pid))
    assert read_state() is None
    assert not state_path.exists()


def test_zombie_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while pid_alive(proc.pid) and time.monotonic() < deadline:  # it exits; nobody reaps it: a zombie
            time.sleep(0.02)
        assert not pid_alive(proc.pid)
        os.kill(proc.pid, 0)  # the pid still exists (unreaped), so os.kill alone would call it alive
    finally:
        proc.wait()


def test_junk_file_is_removed(state_path):
    state_path.parent.mkdir(parents=True)
    state_path.write_text("{not json")
    assert read_state() is None
    assert not state_path.exists()
    state_path.write_text(json.dumps({"pid": "12", "url": 3}))
    assert read_state() is None and not state_path.exists()


def test_our_live_daemon_is_returned(state_path, fake_daemon):
    write_state(sample(fake_daemon.pid))
    assert is_our_daemon(fake_daemon.pid)
    found = read_state()
    assert found is not None and found.pid == fake_daemon.pid and found.token == "secret-token"
    assert state_path.exists()


def test_remove_only_when_the_file_still_names_the_pid(state_path):
    write_state(sample(42))
    assert remove_state(41) is False and state_path.exists()
    assert remove_state(42) is True and not state_path.exists()
    assert remove_state(42) is False


def test_unknown_fields_are_ignored_and_the_token_can_be_left_out():
    state = DaemonState.from_dict({**sample(7).to_dict(), "future_field": 1})
    assert state == sample(7)
    assert "token" not in state.to_dict(with_token=False)


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:9"), ("0.0.0.0", "http://127.0.0.1:9"),
                                       ("::", "http://[::1]:9"), ("::1", "http://[::1]:9")])
def test_url_for(host, url):
    assert url_for(host, 9) == url
