"""Structured logs: one JSON object per line, to stderr and optionally to a file."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Optional, TextIO

from mlxclaude.atomic import private_dir
from mlxclaude.redaction import redact

_lock = threading.Lock()
_file: Optional[TextIO] = None
_echo = True


def configure(log_path: Optional[Path] = None, *, echo: bool = True) -> None:
    global _file, _echo
    with _lock:
        if _file is not None:
            _file.close()
            _file = None
        if log_path is not None:
            _file = open_private(log_path)
        _echo = echo


def open_private(path: Path, mode: str = "a") -> IO:
    """Open a log for appending ("a") or rewriting ("wb"), 0600 in a 0700 directory: logs name the user's
    sessions and models."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)   # a log an earlier version left readable
    return os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8", buffering=1)


def log_event(event: str, *, level: str = "info", kind: str = "request", **fields: Any) -> dict[str, Any]:
    record = {"ts": round(time.time(), 3), "level": level, "kind": kind, "event": event}
    record.update({key: value for key, value in fields.items() if value is not None})
    line = redact(json.dumps(record, default=str, separators=(",", ":")))
    with _lock:
        if _file is not None:
            _file.write(line + "\n")
        if _echo:
            print(line, file=sys.stderr, flush=True)
    return record


def log_internal_error(event: str, exc: BaseException, **fields: Any) -> dict[str, Any]:
    """A real fault (never a bad input): logged at error level with its traceback."""
    import traceback

    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return log_event(event, level="error", error=repr(exc), traceback=trace, **fields)
