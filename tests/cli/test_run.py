"""`mlxclaude run --model M` holds a running daemon to M, as `up --model M` does; without --model the
running daemon is used whatever it serves."""

from __future__ import annotations

import os

import pytest

from mlxclaude.daemon import manager
from mlxclaude.errors import MlxClaudeError
from support.claude_code import require_claude
from support.cli_app import run_cli
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

TOKEN = "run-token-1234"


@pytest.fixture
def starts(tmp_path, monkeypatch):
    """The keyword arguments of each manager.start call; the run stops there (no daemon, no claude)."""
    claude = tmp_path / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(0o755)
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(claude))
    calls = []

    def start(settings, **kwargs):
        calls.append({"model": settings.model, **kwargs})
        raise MlxClaudeError("stopped by the test")

    monkeypatch.setattr(manager, "start", start)
    return calls


def test_an_explicit_model_must_be_the_one_served(starts):
    result = run_cli("run", "--model", "org/other-model")
    assert result.code == 1 and result.err.startswith("error: stopped by the test")
    assert starts == [{"model": "org/other-model", "on_progress": starts[0]["on_progress"], "explicit_model": True}]


def test_a_configured_model_does_not_override_the_running_daemon(starts, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_MODEL", "org/configured")
    assert run_cli("run").code == 1
    assert starts[0]["model"] == "org/configured" and starts[0]["explicit_model"] is False


@pytest.fixture
def claude_bin(tmp_path, monkeypatch):
    binary = require_claude()
    monkeypatch.chdir(tmp_path)                           # claude may write into its working directory
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(binary))
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_EXEC", "0")       # a child process: pytest must survive
    return binary


@pytest.mark.e2e
def test_run_passes_args_and_the_exit_code_through(claude_bin, monkeypatch, capfd):
    """`run` glue with the daemon manager stood in for by a live scripted server (the manager has its
    own tests; `mlxclaude run` end to end is tested by the CLI)."""
    from mlxclaude.daemon import manager
    from mlxclaude.daemon.state import DaemonState

    backend = ScriptedBackend(lambda chat: "Run reply.", context_length=32768, name="Tiny")
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        started = []

        def start(settings, **kwargs):
            started.append(settings)
            return DaemonState(pid=os.getpid(), url=server.url, host="127.0.0.1", port=server.port,
                               model="Tiny", token=TOKEN)

        monkeypatch.setattr(manager, "start", start)
        ok = run_cli("run", "--model", "tiny", "--", "-p", "say hi", "--tools", "Bash",
                       "--system-prompt", "Be terse.")
        child_out, child_err = capfd.readouterr()             # claude writes to the inherited descriptors
        out, err = ok.out + child_out, ok.err + child_err
        monkeypatch.setenv("MLXCLAUDE_MODEL", "tiny")  # a configured model: no default-model offer
        bad = run_cli("run", "--", "--no-such-flag")
    assert ok.code == 0, err[-2000:]
    assert "Run reply." in out
    assert started[0].model == "tiny"
    request = backend.requests[0]
    assert request.model == "claude-local-tiny" and request.max_tokens == 8192
    assert "warning: the model's context is 32768 tokens" in err
    assert bad.code != 0


def test_run_without_claude_fails_before_starting_a_daemon(tmp_path, monkeypatch):
    from mlxclaude.daemon import manager

    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(tmp_path / "no-claude"))
    monkeypatch.setattr(manager, "start", lambda *a, **k: pytest.fail("started a daemon"))
    result = run_cli("run")
    assert result.code == 1 and "claude not found" in result.err.splitlines()[0]
