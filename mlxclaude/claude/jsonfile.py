"""Reading and writing JSON settings files: strict parsing with one-line errors, atomic writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Optional

from mlxclaude.atomic import atomic_write_bytes
from mlxclaude.errors import MlxClaudeError

FIX_HINT = "fix or move it, then retry"


class _NotJson(ValueError):
    """Python's json module accepts it; JSON (and Claude Code) does not, and it would not survive a write back."""


def parse_settings(path: Path, raw: bytes) -> dict[str, Any]:
    """The settings object; a malformed file is a one-line error and is never written."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MlxClaudeError(f"{path}: not UTF-8 (byte {exc.start})", hint=FIX_HINT) from None
    if not text.strip():
        return {}   # an empty (or blank) file reads as an empty object
    data = _strict_loads(path, text)
    if not isinstance(data, dict):
        raise MlxClaudeError(f"{path}: expected a JSON object at the top, found {_kind(data)}", hint=FIX_HINT)
    if "env" in data and not isinstance(data["env"], dict):
        raise MlxClaudeError(f'{path}: "env" must be an object, found {_kind(data["env"])}', hint=FIX_HINT)
    return data


def _strict_loads(path: Path, text: str) -> Any:
    """Strict JSON that dump() writes back as it was read: no NaN or infinities (Python's extensions, which
    would come back as Infinity), no lone surrogates (which UTF-8 cannot encode)."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise MlxClaudeError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                             hint=FIX_HINT) from None
    except _NotJson as exc:
        raise MlxClaudeError(f"{path}: invalid JSON: {exc}", hint=FIX_HINT) from None
    except RecursionError:
        raise MlxClaudeError(f"{path}: invalid JSON: nested too deeply", hint=FIX_HINT) from None
    surrogate = _lone_surrogate(data)
    if surrogate is not None:
        raise MlxClaudeError(f"{path}: invalid JSON: a string holds a lone surrogate escape \\u{surrogate:04x}",
                             hint=FIX_HINT)
    return data


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text} is out of range")
    return value


def _bounded_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:   # past Python's int digit limit
        raise _NotJson(f"a number with {len(text)} digits is too long") from None


def _lone_surrogate(data: Any) -> Optional[int]:
    """The first unpaired surrogate escape (\\ud800-\\udfff) in any key or string, found without
    recursion; such a string cannot be written back as UTF-8."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return ord(value[exc.start])
    return None


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
