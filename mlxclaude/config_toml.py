"""Read and write the flat config.toml: tomllib to read, a tiny writer for key = scalar lines."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional

from mlxclaude.atomic import atomic_write_text
from mlxclaude.errors import MlxClaudeError


def default_config_path() -> Path:
    from mlxclaude import paths

    return paths.config_file()


def read_config(path: Optional[Path] = None) -> dict[str, Any]:
    """The raw table in config.toml ({} when the file does not exist)."""
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
        raise MlxClaudeError(f"{path}: invalid TOML: {exc}",
                             hint="fix the line shown, or remove the file to start again") from None
    except UnicodeDecodeError as exc:
        raise MlxClaudeError(f"{path}: not UTF-8 text: {exc}") from None


def write_config(values: Mapping[str, Any], path: Optional[Path] = None) -> Path:
    """Write a flat config.toml atomically (mode 0600: it may hold the token)."""
    path = path if path is not None else default_config_path()
    text = dumps_toml(values)
    atomic_write_text(path, text, mode=0o600)
    return path


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps_toml(values: Mapping[str, Any]) -> str:
    """Flat `key = value` TOML for strings, ints, floats and bools (nothing else is needed)."""
    lines = ["# mlxclaude settings: `mlxclaude config show` lists them all.\n"]
    for key, value in values.items():
        name = key if _BARE_KEY.fullmatch(key) else _toml_string(key)
        lines.append(f"{name} = {_toml_value(key, value)}\n")
    return "".join(lines)


def _toml_value(key: str, value: Any) -> str:
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
        return _toml_string(value)
    raise MlxClaudeError(f"cannot write {key!r} to config.toml: only flat strings, numbers and booleans "
                         f"are supported, not {type(value).__name__}",
                         hint="edit config.toml by hand (`mlxclaude config path` shows where)")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
