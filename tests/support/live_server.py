"""Run the real app under uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import httpx
import uvicorn

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import uvicorn_config
from mlxclaude.engine.backend import Backend
from mlxclaude.server.app import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, app, port: int, settings: ServerSettings | None = None) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn_config(app, settings or ServerSettings(), host="127.0.0.1", port=port))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def event_loop_thread(self) -> threading.Thread:
        """The thread that runs the server's event loop."""
        return self._thread

    @property
    def worker(self):
        return self.app.state.mlxclaude.worker

    def start(self, timeout: float = 120.0) -> "LiveServer":
        self._thread.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.worker.state == "failed":
                raise RuntimeError(f"model failed to load: {self.worker.error}")
            time.sleep(0.1)
        raise TimeoutError("server did not become healthy")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@contextmanager
def live_server(load_backend: Callable[[], Backend], *, routing=None, load=None, web_search=None, sight=None,
                **settings: object) -> Iterator[LiveServer]:
    """The app on a free port; `routing` (a RoutingConfig) and `load(spec)` as the daemon passes them."""
    port = free_port()
    config = ServerSettings(port=port, **settings)
    server = LiveServer(create_app(config, load_backend, routing=routing, load=load, web_search=web_search, sight=sight), port,
                        config).start()
    try:
        yield server
    finally:
        server.stop()
