"""`mlxclaude models rm`: the full name removes, a partial name needs --yes, the served model is refused."""

from __future__ import annotations

import pytest

from mlxclaude import paths
from mlxclaude.daemon.state import DaemonState, write_state
from mlxclaude.engine import memory
from mlxclaude.engine.memory import MemoryFacts
from support.cli_app import run_cli
from support.daemon_env import fake_daemon
from support.fake_hub import write_model_dir


@pytest.fixture
def imported(monkeypatch):
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=64 * 2**30))
    root = paths.imported_models_dir()
    return {name: write_model_dir(root / name) for name in ("coder-7b-4bit", "coder-7b-8bit", "chat-1b")}


def test_the_full_name_removes_the_model(imported):
    code, out, err = run_cli("models", "rm", "chat-1b")
    assert code == 0 and out == "" and "removed chat-1b" in err
    assert not imported["chat-1b"].exists() and imported["coder-7b-4bit"].is_dir()


def test_a_partial_name_is_refused_with_the_matches(imported):
    code, _, err = run_cli("models", "rm", "chat")
    assert code == 1
    assert err.splitlines() == ["error: 'chat' is not a model's full name; it matches chat-1b",
                                "hint: repeat with the full name, or add --yes to remove that one"]
    assert imported["chat-1b"].is_dir()


def test_a_partial_name_with_yes_removes_its_one_match(imported):
    code, _, err = run_cli("models", "rm", "1B", "--yes")
    assert code == 0 and "removed chat-1b" in err
    assert not imported["chat-1b"].exists()


def test_a_partial_name_matching_several_is_refused_even_with_yes(imported):
    code, _, err = run_cli("models", "rm", "coder", "--yes")
    assert code == 1 and "it matches coder-7b-4bit, coder-7b-8bit" in err.splitlines()[0]
    assert all(path.is_dir() for path in imported.values())


@pytest.mark.parametrize("served", ["by-path", "by-name"])
def test_the_model_the_daemon_serves_is_refused(imported, served):
    path = imported["coder-7b-4bit"]
    with fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url="http://127.0.0.1:8765", host="127.0.0.1", port=8765,
                                model="coder-7b-4bit",
                                model_path=str(path) if served == "by-path" else None))
        code, _, err = run_cli("models", "rm", "coder-7b-4bit")
        other, _, _ = run_cli("models", "rm", "coder-7b-8bit")
    assert code == 1 and len(err.splitlines()) == 2
    assert err.startswith("error: coder-7b-4bit is the model the running daemon serves")
    assert "mlxclaude down" in err.splitlines()[1]
    assert path.is_dir()
    assert other == 0 and not imported["coder-7b-8bit"].exists()


def test_force_stops_the_daemon_that_serves_the_model_then_removes_it(imported):
    from mlxclaude.daemon.state import read_state
    from support.daemon_env import wait_gone
    from support.live_server import free_port

    path = imported["coder-7b-4bit"]
    port = free_port()  # nothing listens: the HTTP shutdown fails, and the pid (ours) is signalled
    with fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port,
                                model="coder-7b-4bit", model_path=str(path)))
        other, _, other_err = run_cli("models", "rm", "chat-1b", "--force")  # not the served one: daemon stays
        assert other == 0 and "stopped" not in other_err and read_state() is not None
        code, out, err = run_cli("models", "rm", "coder-7b-4bit", "--force")
        assert code == 0 and out == ""
        assert f"stopped the daemon (pid {daemon.pid}), which served coder-7b-4bit" in err
        assert "removed coder-7b-4bit" in err
        assert wait_gone(daemon.pid) and read_state() is None
    assert not path.exists() and imported["coder-7b-8bit"].is_dir()


def test_the_refusal_names_force(imported):
    with fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url="http://127.0.0.1:8765", host="127.0.0.1", port=8765,
                                model="chat-1b", model_path=str(imported["chat-1b"])))
        code, _, err = run_cli("models", "rm", "chat-1b")
    assert code == 1 and "--force" in err.splitlines()[1]
