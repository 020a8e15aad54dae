"""Reading and writing JSON settings files: strict parsing with one-line errors, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Optional

from mlxclaude.atomic import atomic_write_bytes
from mlxclaude.errors import MlxClaudeError

FIX_HINT = "fix or move it, then retry"


def parse_settings(path: Path, raw: bytes) -> dict[str, Any]:
    """The settings object; a malformed file is a one-line error and is never written."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MlxClaudeError(f"{path}: not UTF-8 (byte {exc.start})", hint=FIX_HINT) from None
    if not text.strip():
        return {}   # an empty (or blank) file reads as an empty object
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MlxClaudeError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                             hint=FIX_HINT) from None
    if not isinstance(data, dict):
        raise MlxClaudeError(f"{path}: expected a JSON object at the top, found {_kind(data)}", hint=FIX_HINT)
    if "env" in data and not isinstance(data["env"], dict):
        raise MlxClaudeError(f'{path}: "env" must be an object, found {_kind(data["env"])}', hint=FIX_HINT)
    return data


def read_env_quietly(path: Path) -> dict[str, Any]:
    raw = read_bytes(path)
    if raw is None:
        return {}
    try:
        env = parse_settings(path, raw).get("env", {})
    except MlxClaudeError:
        return {}
    return env


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def real_path(path: Path) -> Path:
    """Write through a symlinked settings file (dotfile managers) instead of replacing the link."""
    return Path(os.path.realpath(path))


def read_bytes(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise MlxClaudeError(f"{path}: is a directory", hint=FIX_HINT) from None
    except OSError as exc:
        raise MlxClaudeError(f"{path}: cannot read: {exc.strerror}", hint=FIX_HINT) from None


def file_mode(path: Path) -> Optional[int]:
    try:
        return stat.S_IMODE(real_path(path).stat().st_mode)
    except FileNotFoundError:
        return None


def atomic_write(path: Path, raw: bytes, mode: int) -> None:
    atomic_write_bytes(real_path(path), raw, mode=mode)
