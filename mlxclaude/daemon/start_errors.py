"""Why a daemon start failed, in the daemon's own words: its last error-level log event (message and hint),
else the `error:` / `hint:` lines it printed before it could log, else the last lines of its output.

The daemon logs `model_load_failed` (daemon/serve.py) with the loader's message and hint; `up` prints those
instead of pointing at a log file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from mlxclaude import paths
from mlxclaude.errors import MlxClaudeError

LOG_TAIL_BYTES = 256 * 1024


def stderr_log_file() -> Path:
    """The daemon's own stdout/stderr (tracebacks, startup errors); the structured log is paths.daemon_log_file()."""
    return paths.log_dir() / "daemon.stderr.log"


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]



def last_logged_error(pid: int) -> Optional[tuple[str, Optional[str]]]:
    """(message, hint) of the last error-level event the daemon `pid` wrote to the structured log (the
    events after its `daemon_start`), or None."""
    try:
        with open(paths.daemon_log_file(), "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
            lines = log.read().splitlines()
    except OSError:
        return None
    ours, found = False, None
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("event") == "daemon_start":
            ours, found = record.get("pid") == pid, None
        elif ours and record.get("level") == "error" and (record.get("message") or record.get("error")):
            found = record
    if found is None:
        return None
    hint = found.get("hint")
    return str(found.get("message") or found.get("error")), str(hint) if hint else None


def _printed_error() -> Optional[MlxClaudeError]:
    """The `error: …` (and `hint: …`) lines the daemon printed before it could log, if any."""
    tail = _tail(stderr_log_file())
    for index, line in enumerate(tail):
        if line.startswith("error: "):
            following = tail[index + 1] if index + 1 < len(tail) else ""
            hint = following[len("hint: "):] if following.startswith("hint: ") else None
            return MlxClaudeError(line[len("error: "):], hint=hint or f"daemon output: {stderr_log_file()}")
    return None


def died_error(returncode: Optional[int], pid: Optional[int] = None) -> MlxClaudeError:
    """The daemon's own error if it printed or logged one, else the last lines of its output."""
    printed = _printed_error()
    if printed is not None:
        return printed
    logged = last_logged_error(pid) if pid is not None else None
    if logged is not None:
        return MlxClaudeError(logged[0], hint=logged[1] or "see `mlxclaude logs --level error`")
    log = stderr_log_file()
    detail = "\n".join(f"  {line}" for line in _tail(log)) or "  (no output)"
    code = f" with code {returncode}" if returncode is not None else ""
    return MlxClaudeError(f"the daemon exited{code} before it was ready:\n{detail}", hint=f"daemon output: {log}")


def load_failed_error(pid: int, health: dict) -> MlxClaudeError:
    """`model failed to load: …` with the daemon's own message and hint (from its log), else /health's error."""
    logged = last_logged_error(pid)
    message, hint = logged if logged is not None else (str(health.get("error") or "unknown error"), None)
    prefix = "model failed to load: "
    return MlxClaudeError(message if message.startswith(prefix) else prefix + message,
                          hint=hint or "see `mlxclaude logs --level error`, or check the model with "
                                       "`mlxclaude models check`")
