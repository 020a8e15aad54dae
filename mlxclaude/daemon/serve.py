"""The daemon process: `python -m mlxclaude.daemon.serve --model PATH [--port N] [--host H]`.

It binds its socket first, writes the state file (with the real port, so --port 0 works), then
serves; the model loads on the worker thread meanwhile (/health says "loading" until it is ready).
Settings not given as arguments come from MLXCLAUDE_* variables (the token only ever from
MLXCLAUDE_AUTH_TOKEN, never argv). SIGTERM and SIGINT shut down gracefully; the state file is
removed on the way out if it still names this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from typing import Callable, Optional

from mlxclaude import __version__, logs, paths
from mlxclaude.daemon.state import DaemonState, remove_state, url_for, write_state
from mlxclaude.errors import MlxClaudeError
from mlxclaude.config.registry import ServerSettings


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlxclaude.daemon.serve",
                                     description="The mlxclaude daemon (started by `mlxclaude up`).")
    parser.add_argument("--model", help="model directory (or Hugging Face repo id)")
    parser.add_argument("--model-name", help="the name to report for the model (default: its directory name)")
    parser.add_argument("--host", help="address to bind [default: 127.0.0.1]")
    parser.add_argument("--port", type=int, help="port to bind; 0 picks a free one [default: 8765]")
    parser.add_argument("--echo-logs", action="store_true", help="also write the JSON log lines to stderr")
    return parser.parse_args(argv)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections queue until the loop accepts them
    except OSError:
        sock.close()
        raise
    return sock


def listen(settings: ServerSettings) -> socket.socket:
    """The bound, listening socket for `settings`, or the one-line error a busy port gets."""
    try:
        return bind_socket(settings.host, settings.port)
    except OSError as exc:
        raise MlxClaudeError(f"cannot bind {settings.host}:{settings.port}: {exc.strerror or exc}",
                             hint="use --port N or stop what is using it") from exc


def backend_loader(settings: ServerSettings, name: Optional[str]) -> Callable:
    from mlxclaude.server.app import mlx_backend_loader

    load_default = mlx_backend_loader(settings)
    if not name:
        return load_default

    def load():
        backend = load_default()
        backend.info = replace(backend.info, name=name)
        return backend

    return load


def serve(settings: ServerSettings, *, model_name: Optional[str] = None) -> int:
    import uvicorn

    from mlxclaude.logs import log_event
    from mlxclaude.serve import check_settings
    from mlxclaude.server.app import create_app

    check_settings(settings)
    sock = listen(settings)
    settings = replace(settings, port=sock.getsockname()[1])
    app = create_app(settings, backend_loader(settings, model_name))
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    def request_exit(*_: object) -> None:
        app.state.mlxclaude.begin_shutdown()  # open streams end with an error event, not a cut body
        server.should_exit = True

    app.state.shutdown_callback = request_exit
    # uvicorn re-raises a captured SIGTERM/SIGINT after a graceful exit; with these handlers that is a
    # no-op, so the state file is still removed below (and a signal before serving starts stops it too)
    signal.signal(signal.SIGTERM, request_exit)
    signal.signal(signal.SIGINT, request_exit)

    local = os.path.expanduser(settings.model or "")
    model_path = os.path.abspath(local) if os.path.isdir(local) else settings.model
    state = DaemonState(
        pid=os.getpid(), url=url_for(settings.host, settings.port), host=settings.host, port=settings.port,
        model=model_name or (os.path.basename(local.rstrip("/")) if os.path.isdir(local) else settings.model),
        model_path=model_path,
        version=__version__, started_at=time.time(), log_path=str(paths.daemon_log_file()),
        token=settings.auth_token,
    )
    write_state(state)
    log_event("daemon_start", kind="daemon", pid=state.pid, url=state.url, model=state.model,
              model_path=state.model_path, version=__version__)
    if not settings.is_loopback:
        log_event("non_loopback_bind", kind="daemon", level="warning", host=settings.host)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        remove_state(os.getpid())
        log_event("daemon_stop", kind="daemon", pid=state.pid)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logs.configure(paths.daemon_log_file(), echo=args.echo_logs)
    try:
        settings = ServerSettings.from_env(model=args.model, host=args.host, port=args.port)
        return serve(settings, model_name=args.model_name)
    except MlxClaudeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
