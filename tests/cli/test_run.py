"""`mlxclaude run --model M` holds a running daemon to M, as `up --model M` does; without --model the
running daemon is used whatever it serves."""

from __future__ import annotations

import pytest

from mlxclaude.daemon import manager
from mlxclaude.errors import MlxClaudeError
from support.cli_app import run_cli


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
