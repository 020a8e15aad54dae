"""A daemon's world for tests that need real processes: an isolated MLXCLAUDE_HOME, a free port, its state
file and log, and `mlxclaude` run as a child process there (tests/support/cli_app.py's subprocess driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from support.cli_app import run_process, start_process
from support.live_server import free_port

DAEMON_MODULE = "mlxclaude.daemon.serve"


def daemon_pids_under(home: Path) -> list[int]:
    """Live daemons whose MLXCLAUDE_HOME is `home` (Linux /proc); [] elsewhere."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if DAEMON_MODULE.encode() not in (entry / "cmdline").read_bytes():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"MLXCLAUDE_HOME={home}".encode() in environ and (entry / "stat").read_text().split()[2] != "Z":
            found.append(int(entry.name))
    return found


class Env:
    def __init__(self, home: Path, model: Path) -> None:
        self.home = home
        self.model = model
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MLXCLAUDE_")}
        self.env.update(MLXCLAUDE_HOME=str(home), HF_HUB_CACHE=str(home / "hf-cache"), HF_HUB_OFFLINE="1")
        self.env.pop("HTTP_PROXY", None)
        self.env.pop("http_proxy", None)

    @property
    def state_file(self) -> Path:
        return self.home / "state" / "daemon.json"

    @property
    def daemon_log(self) -> Path:
        return self.home / "log" / "daemon.jsonl"

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run_process(*args, env=self.env, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen:
        return start_process(*args, env=self.env)

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        result = self.cli("up", "--model", str(self.model), "--port", str(self.port), *extra)
        assert result.returncode == 0, result.stderr
        return result


def wait_gone(pid: int, timeout: float = 10) -> bool:
    from mlxclaude.daemon.state import pid_alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def fake_daemon() -> Iterator[subprocess.Popen]:
    """A live process whose command line names our daemon module, so a state file naming it counts as ours."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", DAEMON_MODULE])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
