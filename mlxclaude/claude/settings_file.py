"""Wire the daemon into Claude Code's settings.json, and undo it exactly.

Target: `~/.claude/settings.json` (CLAUDE_CONFIG_DIR replaces ~/.claude), or with a project directory
`<project>/.claude/settings.local.json` (personal, gitignored). Only keys inside the `env` object change.

Before each write the bytes it replaces are copied under `state_dir()/settings-backups/<target>/`, and
`wired.json` there records what was written: the keys mlxclaude added, the values it replaced, and the
digest of the bytes it wrote. `unwire` puts back the exact original bytes (or deletes the file it
created) when the file is still byte-identical to what `wire` wrote; when the user has edited it since,
it removes only the keys mlxclaude added, restores the values it replaced and keeps everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from mlxclaude import paths
from mlxclaude.claude.env import ENV_KEYS, redact
from mlxclaude.claude.jsonfile import atomic_write, dump, file_mode, parse_settings, read_bytes, read_env_quietly, real_path, sha256
from mlxclaude.errors import MlxClaudeError

RECORD_VERSION = 1
NEW_FILE_MODE = 0o600   # it holds the daemon's token


@dataclass(frozen=True)
class WireResult:
    path: Path
    scope: str                              # "user" or "project"
    created: bool                           # the file did not exist before this wire
    added: tuple[str, ...]                  # keys new to the file
    replaced: tuple[str, ...]               # keys whose earlier value was overwritten
    unchanged: tuple[str, ...]              # keys that already had the value
    backup: Optional[Path]                  # copy of the bytes this write replaced (None: no file)
    record: Path


@dataclass(frozen=True)
class UnwireResult:
    path: Path
    scope: str
    action: str                             # restored | deleted | merged | kept | not-wired | missing
    removed: tuple[str, ...] = ()           # keys mlxclaude had added, now gone
    restored: tuple[str, ...] = ()          # keys put back to their earlier value
    kept: tuple[str, ...] = ()              # keys the user changed (or removed) since: left alone


@dataclass
class _Record:
    path: str
    scope: str
    wired_at: float
    existed: bool                           # the file existed before mlxclaude first wrote it
    had_env: bool                           # ... and had an `env` object
    exact: bool                             # `original` is restorable byte-for-byte
    original_mode: Optional[int]
    values: dict[str, Any]                  # what mlxclaude wrote
    added: list[str]                        # of those, keys that were absent before
    previous: dict[str, Any]                # of those, keys that were present before, with their values
    written_sha256: str
    backups: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, **self.__dict__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "_Record":
        data = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**data)


# -- locations --------------------------------------------------------------------------------------


def claude_config_dir() -> Path:
    """`~/.claude`, or CLAUDE_CONFIG_DIR when set (§8.1)."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".claude"


def settings_path(project_dir: Optional[Path] = None) -> Path:
    if project_dir is not None:
        return Path(project_dir).expanduser().absolute() / ".claude" / "settings.local.json"
    return claude_config_dir().absolute() / "settings.json"


def _scope(project_dir: Optional[Path]) -> str:
    return "user" if project_dir is None else "project"


def backups_root() -> Path:
    return paths.state_dir() / "settings-backups"


def _backup_dir(target: Path, scope: str) -> Path:
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:12]
    return backups_root() / f"{scope}-{target.parent.parent.name or 'root'}-{digest}"


def _record_path(target: Path, scope: str) -> Path:
    return _backup_dir(target, scope) / "wired.json"


# -- the public API ---------------------------------------------------------------------------------


def wire_settings(env: dict[str, str], *, project_dir: Optional[Path] = None) -> WireResult:
    """Merge `env` into the settings file's `env` object; every other key stays as it was."""
    scope = _scope(project_dir)
    target = settings_path(project_dir)
    current = read_bytes(target)
    data = parse_settings(target, current) if current is not None else {}
    had_env = "env" in data
    env_obj = data.get("env", {})
    record = _load_record(target, scope)
    if record is not None and current is None:   # the user deleted the file since: start over
        _drop_record(target, scope)
        record = None

    # what was there before mlxclaude first wrote each key: carried over from an earlier wire while
    # the key still holds the value that wire wrote, else taken from the file as it is now
    added: list[str] = []
    previous: dict[str, Any] = {}
    if record is not None:
        for key, ours in record.values.items():
            if not (key in env_obj and env_obj[key] == ours):
                continue
            if key not in env:           # an earlier wire set it, this one does not: put it back
                _restore_key(env_obj, key, record)
            elif key in record.added:
                added.append(key)
            else:
                previous[key] = record.previous[key]
    for key in env:
        if key not in added and key not in previous:
            if key in env_obj:
                previous[key] = env_obj[key]
            else:
                added.append(key)

    report = {
        "added": tuple(key for key in env if key not in env_obj),
        "replaced": tuple(key for key in env if key in env_obj and env_obj[key] != env[key]),
        "unchanged": tuple(key for key in env if key in env_obj and env_obj[key] == env[key]),
    }
    env_obj.update(env)
    data["env"] = env_obj
    new_bytes = dump(data)

    backup_dir = _backup_dir(target, scope)
    backup_dir.mkdir(parents=True, exist_ok=True)
    backup = None
    if current is not None:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 10**9:09d}"
        backup = backup_dir / f"before-{stamp}.json"
        atomic_write(backup, current, 0o600)
        if record is None:
            atomic_write(backup_dir / "original.json", current, 0o600)
    mode = file_mode(target)
    if record is None:
        record = _Record(path=str(target), scope=scope, wired_at=0.0, existed=current is not None,
                         had_env=had_env, exact=True, original_mode=mode, values={}, added=[], previous={},
                         written_sha256="")
    else:
        # byte-exact undo stays possible only while nobody else has touched the file
        record.exact = record.exact and current is not None and sha256(current) == record.written_sha256
    record.wired_at = time.time()
    record.values, record.added, record.previous = dict(env), added, previous
    record.written_sha256 = sha256(new_bytes)
    if backup is not None:
        record.backups.append(backup.name)
    # the record first: a crash in between leaves a record whose undo finds nothing to change
    earlier = read_bytes(_record_path(target, scope))
    _save_record(record)
    try:
        atomic_write(target, new_bytes, mode if mode is not None else NEW_FILE_MODE)
    except BaseException:
        if earlier is None:
            _record_path(target, scope).unlink(missing_ok=True)
        else:
            atomic_write(_record_path(target, scope), earlier, 0o600)
        raise
    return WireResult(path=target, scope=scope, created=current is None, backup=backup,
                      record=_record_path(target, scope), **report)


def _drop_empty_project_dir(target: Path, project_dir: Optional[Path]) -> None:
    """A project's `.claude/` that wiring created and unwiring left empty goes too (never ~/.claude)."""
    if project_dir is None:
        return
    try:
        target.parent.rmdir()  # only succeeds when empty
    except OSError:
        pass


def unwire_settings(*, project_dir: Optional[Path] = None) -> UnwireResult:
    """Undo wire_settings (see the module docstring)."""
    scope = _scope(project_dir)
    target = settings_path(project_dir)
    record = _load_record(target, scope)
    if record is None:
        return UnwireResult(target, scope, "not-wired")
    current = read_bytes(target)
    if current is None:   # the user deleted it since: nothing of ours is left
        _drop_record(target, scope)
        return UnwireResult(target, scope, "missing", kept=tuple(record.values))
    if record.exact and sha256(current) == record.written_sha256:
        if record.existed:
            original = (_backup_dir(target, scope) / "original.json").read_bytes()
            atomic_write(target, original, record.original_mode or file_mode(target) or NEW_FILE_MODE)
            action = "restored"
        else:
            real_path(target).unlink()
            _drop_empty_project_dir(target, project_dir)
            action = "deleted"
        _drop_record(target, scope)
        return UnwireResult(target, scope, action, removed=tuple(record.added), restored=tuple(record.previous))

    data = parse_settings(target, current)
    env_obj = data.get("env", {})
    removed, restored, kept = [], [], []
    for key, ours in record.values.items():
        if key in env_obj and env_obj[key] == ours:
            (removed if key in record.added else restored).append(key)
            _restore_key(env_obj, key, record)
        else:
            kept.append(key)
    if "env" in data and not env_obj and not record.had_env:
        del data["env"]
    if not data and not record.existed:
        real_path(target).unlink()
        _drop_empty_project_dir(target, project_dir)
        action = "deleted"
    elif removed or restored:
        atomic_write(target, dump(data), file_mode(target) or NEW_FILE_MODE)
        action = "merged"
    else:
        action = "kept"   # none of our values is left: the file stays as the user has it
    _drop_record(target, scope)
    return UnwireResult(target, scope, action, removed=tuple(removed), restored=tuple(restored), kept=tuple(kept))


def show_settings(*, project_dir: Optional[Path] = None, cwd: Optional[Path] = None) -> dict[str, Any]:
    """What the target file sets for Claude Code's endpoint, and who set each key: `mlxclaude` (as
    wired and unchanged since) or `user`. `shadowed_by` lists files Claude Code ranks higher
    (project settings over user settings) that set some of the same keys."""
    scope = _scope(project_dir)
    target = settings_path(project_dir)
    record = _load_record(target, scope)
    current = read_bytes(target)
    data = parse_settings(target, current) if current is not None else {}
    env_obj = data.get("env", {})
    keys = {}
    for key, value in env_obj.items():
        if not _relevant(key):
            continue
        ours = record is not None and key in record.values and record.values[key] == value
        keys[key] = {"value": redact(key, value), "by": "mlxclaude" if ours else "user"}
    result: dict[str, Any] = {
        "path": str(target),
        "scope": scope,
        "exists": current is not None,
        "wired": record is not None,
        "wired_at": _iso(record.wired_at) if record else None,
        "edited_since_wire": bool(record and current is not None and sha256(current) != record.written_sha256),
        "env": keys,
        "shadowed_by": [],
    }
    project = Path(project_dir if project_dir is not None else (cwd or Path.cwd())).absolute()
    higher = [project / ".claude" / "settings.local.json"]
    if scope == "user":
        higher.insert(0, project / ".claude" / "settings.json")
    for path in higher:
        if path == target:
            continue
        other = read_env_quietly(path)
        shared = sorted(key for key in other if key in keys)
        if shared:
            result["shadowed_by"].append({"path": str(path), "keys": shared})
    return result


# -- helpers ----------------------------------------------------------------------------------------


def _relevant(key: str) -> bool:
    return key in ENV_KEYS or key.startswith(("ANTHROPIC_", "CLAUDE_CODE_USE_"))


def _restore_key(env_obj: dict[str, Any], key: str, record: _Record) -> None:
    if key in record.previous:
        env_obj[key] = record.previous[key]
    else:
        env_obj.pop(key, None)


def _load_record(target: Path, scope: str) -> Optional[_Record]:
    path = _record_path(target, scope)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = _Record.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise MlxClaudeError(f"{path}: unreadable wiring record ({exc})",
                             hint="delete it; the original settings are in the same folder") from None
    return record if record.path == str(target) else None


def _save_record(record: _Record) -> None:
    path = _record_path(Path(record.path), record.scope)
    atomic_write(path, (json.dumps(record.to_json(), indent=2) + "\n").encode(), 0o600)


def _drop_record(target: Path, scope: str) -> None:
    """Forget the wiring; the backups stay next to it."""
    try:
        _record_path(target, scope).unlink()
    except FileNotFoundError:
        pass
    directory = _backup_dir(target, scope)
    try:
        (directory / "original.json").replace(directory / f"original-{time.strftime('%Y%m%dT%H%M%S')}.json")
    except FileNotFoundError:
        pass


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))
