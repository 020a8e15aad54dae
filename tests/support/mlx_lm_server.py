"""A real OpenAI-compatible engine for the tests: `mlx_lm.server` (it ships with mlx-lm) on a model directory,
in a child process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.live_server import free_port


class MlxLmServer:
    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._argv = [sys.executable, "-m", "mlx_lm.server", "--model", str(model), "--port", str(self.port),
                      "--temp", "0", "--max-tokens", "64"]
        self._log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "MlxLmServer":
        with open(self._log, "wb") as out:
            self.process = subprocess.Popen(self._argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlx_lm.server exited: {self._log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise TimeoutError("mlx_lm.server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
