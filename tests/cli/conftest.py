"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from mlxclaude.daemon import manager
from mlxclaude.errors import MlxClaudeError


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
