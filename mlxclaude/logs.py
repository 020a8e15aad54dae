"""Structured logs: one JSON object per line, to stderr and optionally to a file."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, TextIO

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
            log_path.parent.mkdir(parents=True, exist_ok=True)
            _file = open(log_path, "a", encoding="utf-8", buffering=1)
        _echo = echo


def log_event(event: str, *, level: str = "info", kind: str = "request", **fields: Any) -> dict[str, Any]:
    record = {"ts": round(time.time(), 3), "level": level, "kind": kind, "event": event}
    record.update({key: value for key, value in fields.items() if value is not None})
    line = json.dumps(record, default=str, separators=(",", ":"))
    with _lock:
        if _file is not None:
            _file.write(line + "\n")
        if _echo:
            print(line, file=sys.stderr, flush=True)
    return record
