"""The daemon's state file: how the CLI finds a running daemon (discovery, not readiness).

The daemon writes it atomically (temp file + os.replace, mode 0600) once its port is bound.
Readers treat unreadable files as absent and remove files whose pid is dead or is not ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from mlxclaude import paths
from mlxclaude.atomic import atomic_write_text

DAEMON_MODULE = "mlxclaude.daemon.serve"


@dataclass
class DaemonState:
    pid: int
    url: str
    host: str
    port: int
    model: Optional[str] = None
    model_path: Optional[str] = None
    version: Optional[str] = None
    started_at: Optional[float] = None
    log_path: Optional[str] = None
    token: Optional[str] = None
    already_running: bool = field(default=False, compare=False)  # set by manager.start, never written

    def to_dict(self, *, with_token: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data.pop("already_running")
        if not with_token or data.get("token") is None:
            data.pop("token")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DaemonState":
        known = {spec.name for spec in fields(cls)} - {"already_running"}
        values = {key: value for key, value in data.items() if key in known}
        state = cls(**values)
        if not isinstance(state.pid, int) or not isinstance(state.port, int) or not isinstance(state.url, str):
            raise ValueError("malformed state file")
        return state


def url_for(host: str, port: int) -> str:
    """The URL a local client uses: wildcard binds are reached on loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# -- processes -----------------------------------------------------------------------------


def _proc_state(pid: int) -> Optional[str]:
    """The one-letter state from /proc (Linux), or None where /proc is not there."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "X" if Path("/proc/self").exists() else None
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[0] if ")" in text else None


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _proc_state(pid)
    if state is not None:
        return state not in ("Z", "X")
    if sys.platform == "darwin":
        stat = _ps(pid, "stat")
        return bool(stat) and not stat.startswith("Z")
    return True


def _ps(pid: int, column: str) -> str:
    try:
        result = subprocess.run(["ps", "-o", f"{column}=", "-p", str(pid)], capture_output=True, text=True,
                                timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def command_line(pid: int) -> Optional[list[str]]:
    """The process's argv (Linux /proc, or `ps` elsewhere); None when it cannot be read."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    command = _ps(pid, "command")
    return command.split() if command else None


def is_our_daemon(pid: int) -> bool:
    """The pid is alive and runs `python -m mlxclaude.daemon.serve` (so signalling it is safe)."""
    if not pid_alive(pid):
        return False
    argv = command_line(pid)
    return bool(argv) and any(DAEMON_MODULE in part for part in argv)


# -- the file ------------------------------------------------------------------------------


def write_state(state: DaemonState, path: Optional[Path] = None) -> Path:
    """Write atomically with mode 0600: readers never see a half-written file."""
    path = path or paths.state_file()
    atomic_write_text(path, json.dumps(state.to_dict(), indent=2) + "\n", mode=0o600)
    return path


def load_state_file(path: Optional[Path] = None) -> Optional[DaemonState]:
    """The file's content as is (no liveness check); None when absent or unreadable."""
    path = path or paths.state_file()
    try:
        return DaemonState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None


def remove_state(pid: Optional[int] = None, path: Optional[Path] = None) -> bool:
    """Remove the file; with `pid`, only while the file still names that pid (a newer daemon keeps its file)."""
    path = path or paths.state_file()
    if pid is not None:
        current = load_state_file(path)
        if current is not None and current.pid != pid:
            return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def read_state(path: Optional[Path] = None) -> Optional[DaemonState]:
    """The running daemon's state, or None. Removes a stale file (dead pid, a pid that is not ours, junk)."""
    path = path or paths.state_file()
    if not path.exists():
        return None
    state = load_state_file(path)
    if state is None:
        # unreadable or malformed: writes are atomic, so this is junk rather than a write in progress
        if path.exists() and load_state_file(path) is None:
            try:
                path.unlink()
            except OSError:
                pass
        return None
    if not is_our_daemon(state.pid):
        remove_state(state.pid, path)
        return None
    return state


def last_model_file() -> Path:
    return paths.state_dir() / "last-model.json"


def remember_model(model: Optional[str], model_path: Optional[str]) -> None:
    """The model a daemon served, kept after it stops: `restart` while down starts it again."""
    if model_path:
        atomic_write_text(last_model_file(), json.dumps({"model": model, "model_path": model_path}) + "\n", mode=0o600)


def last_model() -> Optional[tuple[Optional[str], str]]:
    """(name, path) of the model the last daemon served, when that path still exists."""
    try:
        data = json.loads(last_model_file().read_text())
    except (OSError, ValueError):
        return None
    path = data.get("model_path") if isinstance(data, dict) else None
    if not isinstance(path, str) or not Path(path).exists():
        return None
    name = data.get("model")
    return (name if isinstance(name, str) else None), path
