"""Nothing in the suite can write to the real home: session-, module- and function-scoped fixtures each
see a temporary one (tests/conftest.py, tests/support/home.py), and the session fails if the real one
changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlxclaude import paths
from support import home


def locations() -> dict[str, Path]:
    """Everywhere mlxclaude, Claude Code and Hugging Face would put files, as the environment says now."""
    claude = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    return {"home": Path.home(), "config": paths.config_dir(), "data": paths.data_dir(),
            "state": paths.state_dir(), "cache": paths.cache_dir(), "log": paths.log_dir(),
            "hf": paths.hf_hub_cache(), "claude": claude, "prompt-cache": paths.cache_dir() / "prompt-cache"}


def under(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


@pytest.fixture(scope="session")
def seen_by_a_session_fixture() -> dict[str, Path]:
    return locations()


@pytest.fixture(scope="module")
def seen_by_a_module_fixture() -> dict[str, Path]:
    return locations()


def test_session_fixtures_live_in_the_session_home(seen_by_a_session_fixture):
    for name, path in seen_by_a_session_fixture.items():
        assert under(path, home.session_home()), (name, path)


def test_module_fixtures_live_in_their_own_module_home(seen_by_a_module_fixture, module_home):
    for name, path in seen_by_a_module_fixture.items():
        assert under(path, module_home), (name, path)


def test_each_test_has_its_own_home(isolated_home, module_home):
    for name, path in locations().items():
        assert under(path, isolated_home), (name, path)
    assert not under(isolated_home, module_home) and not under(module_home, isolated_home)


def test_the_developers_settings_do_not_leak_in():
    assert not [key for key in os.environ if key.startswith("MLXCLAUDE_") and key not in home.KEEP_ENV
                and key != "MLXCLAUDE_HOME"]
    assert "HF_HUB_CACHE" not in os.environ and "CLAUDE_CONFIG_DIR" not in os.environ


def test_the_guard_sees_a_file_written_under_a_watched_directory(tmp_path):
    watched = tmp_path / "real-cache"
    (watched / "prompt-cache").mkdir(parents=True)
    guard = home.RealHomeGuard(watched={watched: "tree", tmp_path / "claude": "created"})
    guard.before = {path: home.snapshot(path, deep=mode == "tree") for path, mode in guard.watched.items()}
    assert guard.changes() == []
    (watched / "prompt-cache" / "abc.safetensors").write_bytes(b"kv")
    (tmp_path / "claude").mkdir()
    changes = guard.changes()
    assert f"created {watched / 'prompt-cache' / 'abc.safetensors'}" in changes
    assert f"created {tmp_path / 'claude'}" in changes
