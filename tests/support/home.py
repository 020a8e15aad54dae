"""Keep the suite out of the real home: every scope gets a temporary one, and the real one is watched.

`isolate(patch, root)` points everything that decides where files go (MLXCLAUDE_HOME, HOME, the XDG
directories, the Hugging Face cache, Claude Code's config dir) under `root` and drops the developer's
`MLXCLAUDE_*` settings. tests/conftest.py calls it three times: once for the whole session before
collection (session- and module-scoped fixtures, such as a live server whose worker thread writes
prompt-cache files, run before any function-scoped fixture), once per module and once per test.

`RealHomeGuard` records the real locations mlxclaude and Claude Code write to before the session
isolates anything, and lists what changed there when the session ends; the conftest fails the run
on any change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KEEP_ENV = {"MLXCLAUDE_TEST_CACHE", "MLXCLAUDE_CLAUDE_BIN"}  # where the test models and `claude` are
XDG = {"XDG_CONFIG_HOME": "config", "XDG_CACHE_HOME": "cache", "XDG_DATA_HOME": "data",
       "XDG_STATE_HOME": "state"}


def isolate(patch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point every home-like location under `root`; return the MLXCLAUDE_HOME it sets."""
    for key in list(os.environ):
        if key.startswith("MLXCLAUDE_") and key not in KEEP_ENV:
            patch.delenv(key)
    user = root / "user"
    patch.setenv("HOME", str(user))
    for variable, name in XDG.items():
        patch.setenv(variable, str(user / name))
    patch.setenv("MLXCLAUDE_HOME", str(root))
    patch.setenv("HF_HOME", str(root / "hf"))
    patch.delenv("HF_HUB_CACHE", raising=False)
    patch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    return root


Snapshot = dict[str, tuple[int, int]]  # relative path -> (mtime_ns, size); "." is the path itself


def snapshot(root: Path, *, deep: bool) -> Snapshot | None:
    """The path itself and, when deep, everything under it; None when it does not exist."""
    try:
        top = root.lstat()
    except OSError:
        return None
    found: Snapshot = {".": (top.st_mtime_ns, top.st_size)}
    if deep and root.is_dir() and not root.is_symlink():
        for directory, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                path = Path(directory, name)
                try:
                    info = path.lstat()
                except OSError:
                    continue
                found[str(path.relative_to(root))] = (info.st_mtime_ns, info.st_size)
    return found


@dataclass
class RealHomeGuard:
    """The real locations a leaking test would write to, and what they held before the session.

    Watches are "tree" (anything created, removed or modified under the path), "path" (the path itself:
    a directory changes when an entry is added, removed or replaced) or "created" (only its appearance:
    for what Claude Code itself keeps rewriting while a developer uses it alongside the suite).
    """

    watched: dict[Path, str] = field(default_factory=dict)
    before: dict[Path, Snapshot | None] = field(default_factory=dict)

    @classmethod
    def of_this_machine(cls) -> "RealHomeGuard":
        """mlxclaude's own directories as the product places them without MLXCLAUDE_HOME, Claude Code's
        config, and the Hugging Face cache. Call before isolating anything."""
        from mlxclaude import paths

        guard = cls()
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("MLXCLAUDE_HOME", raising=False)
            for where in (paths.config_dir(), paths.data_dir(), paths.state_dir(), paths.cache_dir(),
                          paths.log_dir()):
                guard.watched[where] = "tree"
            guard.watched[paths.hf_hub_cache()] = "path"      # a model downloaded into the real cache
        claude = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude").expanduser()
        guard.watched[claude] = "created"
        guard.watched[claude / "settings.json"] = "path"      # what `mlxclaude settings wire` writes
        guard.watched[Path.home() / ".claude.json"] = "created"
        guard.before = {path: snapshot(path, deep=mode == "tree") for path, mode in guard.watched.items()}
        return guard

    def changes(self) -> list[str]:
        """One line per created, removed or modified path since the guard was made."""
        lines = []
        for root, mode in self.watched.items():
            before, after = self.before[root], snapshot(root, deep=mode == "tree")
            if mode == "created":
                lines += [f"created {root}"] if before is None and after is not None else []
                continue
            for key in sorted((before or {}).keys() | (after or {}).keys()):
                where = root if key == "." else root / key
                if before is None or key not in before:
                    lines.append(f"created {where}")
                elif after is None or key not in after:
                    lines.append(f"removed {where}")
                elif before[key] != after[key]:
                    lines.append(f"modified {where}")
        return lines


_session: dict = {}


def begin_session() -> Path:
    """Watch the real home, then move the whole process into a temporary one (pytest_configure)."""
    _session["guard"] = RealHomeGuard.of_this_machine()
    _session["root"] = Path(tempfile.mkdtemp(prefix="mlxclaude-session-home-"))
    _session["patch"] = pytest.MonkeyPatch()
    return isolate(_session["patch"], _session["root"])


def session_home() -> Path:
    """The temporary home session-scoped fixtures see."""
    return _session["root"]


def real_home_changes() -> list[str]:
    guard = _session.get("guard")
    return guard.changes() if guard else []


def end_session() -> None:
    """Restore the environment and remove the session's home (pytest_unconfigure)."""
    if "patch" in _session:
        _session.pop("patch").undo()
        shutil.rmtree(_session.pop("root"), ignore_errors=True)
