"""Read and write config.toml: tomllib to read; a small writer for top-level `key = value` lines and
the routing tables ([backends.NAME], [routes], [fallbacks]), so that `config set` never
loses them."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional

from mlxclaude.atomic import atomic_write_text
from mlxclaude.errors import MlxClaudeError, UsageError

TABLES = ("backends", "routes", "fallbacks")  # top-level tables that are not settings


def default_config_path() -> Path:
    from mlxclaude import paths

    return paths.config_file()


def read_config(path: Optional[Path] = None) -> dict[str, Any]:
    """The whole document in config.toml ({} when the file does not exist)."""
    path = path if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise MlxClaudeError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}",  # a mistake in configuration: exit 2, as the others
                         hint="fix the line shown, or remove the file to start again") from None
    except UnicodeDecodeError as exc:
        raise MlxClaudeError(f"{path}: not UTF-8 text: {exc}") from None


def write_config(values: Mapping[str, Any], path: Optional[Path] = None) -> Path:
    """Write config.toml atomically (mode 0600: it may hold the token)."""
    path = path if path is not None else default_config_path()
    atomic_write_text(path, dumps_toml(values), mode=0o600)
    return path


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps_toml(values: Mapping[str, Any]) -> str:
    """TOML for strings, numbers, booleans, arrays of them, and (nested) tables."""
    lines = ["# mlxclaude settings: `mlxclaude config show` lists them all.\n"]
    _write_table(lines, (), values)
    return "".join(lines)


def _write_table(lines: list[str], prefix: tuple[str, ...], table: Mapping[str, Any]) -> None:
    plain = {key: value for key, value in table.items() if not isinstance(value, Mapping)}
    nested = {key: value for key, value in table.items() if isinstance(value, Mapping)}
    if prefix and (plain or not nested):
        lines.append(f"\n[{'.'.join(_key(part) for part in prefix)}]\n")
    for key, value in plain.items():
        lines.append(f"{_key(key)} = {_value(key, value)}\n")
    for key, value in nested.items():
        _write_table(lines, (*prefix, key), value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)) and not any(isinstance(item, Mapping) for item in value):
        return "[" + ", ".join(_value(key, item) for item in value) + "]"
    raise MlxClaudeError(f"cannot write {key!r} to config.toml: {type(value).__name__} values are not supported",
                         hint="edit config.toml by hand (`mlxclaude config path` shows where)")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
