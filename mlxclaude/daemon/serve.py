"""The one serve path: the daemon (`python -m mlxclaude.daemon.serve --model PATH [--port N] [--host H]`,
spawned by `mlxclaude up`) and, in the foreground, `mlxclaude serve`.

It binds its socket first (a busy port fails before the model loads), then serves; the model loads on
the worker thread meanwhile (/health says "loading" until it is ready). On SIGINT or SIGTERM open
streams end with an error event and uvicorn drains. The daemon also writes the state file (with the
real port, so --port 0 works) that `up`, `status` and `down` find it by, removes it on the way out
if it still names this process, and accepts POST /mlxclaude/shutdown. Settings not given as
arguments come from MLXCLAUDE_* variables (the token only ever from MLXCLAUDE_AUTH_TOKEN, never argv).
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
from typing import TYPE_CHECKING, Any, Callable, Optional

from mlxclaude import __version__, logs, paths
from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.state import DaemonState, remember_model, remove_state, url_for, write_state
from mlxclaude.errors import MlxClaudeError, UsageError
from mlxclaude.logs import log_event

if TYPE_CHECKING:
    from mlxclaude.engine.backend import Backend
    from mlxclaude.routing.config import BackendSpec, RoutingConfig


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlxclaude.daemon.serve",
                                     description="The mlxclaude daemon (started by `mlxclaude up`).")
    parser.add_argument("--model", help="model directory (or Hugging Face repo id)")
    parser.add_argument("--model-name", help="the name to report for the model (default: its directory name)")
    parser.add_argument("--host", help="address to bind [default: 127.0.0.1]")
    parser.add_argument("--port", type=int, help="port to bind; 0 picks a free one [default: 8765]")
    parser.add_argument("--echo-logs", action="store_true", help="also write the JSON log lines to stderr")
    return parser.parse_args(argv)


def check_settings(settings: ServerSettings) -> None:
    """What must hold before anything binds: a model that resolves (a repo id not downloaded yet is
    fine, the loader pulls it) unless every route goes to another backend, and a token for any address
    beyond loopback."""
    routing = load_routing(settings)
    load_web_search()
    if settings.image_backend and settings.image_backend not in routing.backends:
        raise UsageError(f"image_backend: no backend named {settings.image_backend!r}",
                         hint="name one of config.toml's [backends.NAME] tables, or unset it: "
                              "mlxclaude config unset image_backend")
    if not settings.model:
        if routing.uses_local:
            raise UsageError("no model given", hint="pass --model PATH (an mlx-lm model directory), or route "
                                                    "every model to a remote backend in config.toml")
    else:
        from mlxclaude.models.resolve import resolve

        resolve(settings.model, pull=False)
    if not settings.is_loopback and not settings.auth_token:
        raise UsageError(f"refusing to bind {settings.host} without a token",
                         hint="set --auth-token or MLXCLAUDE_AUTH_TOKEN, or bind 127.0.0.1")


def load_web_search():
    """config.toml's [web_search] (None without one); raises UsageError for a bad table."""
    from mlxclaude.config.toml import read_config
    from mlxclaude.websearch.config import parse_web_search

    return parse_web_search(read_config())


def load_routing(settings: ServerSettings) -> "RoutingConfig":
    """config.toml's backends, routes and fallbacks (only `local`, the settings' model, when it has none)."""
    from mlxclaude.daemon import routes

    return routes.load_routing(settings.model)


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
                             hint="stop what is using it, or pick another port: mlxclaude config set port N "
                                  "(or --port N)") from exc


def mlx_backend_loader(settings: ServerSettings, *, name: Optional[str] = None,
                       backend_name: Optional[str] = None) -> Callable[[], "Backend"]:
    """What the worker thread calls to load settings.model (a repo id is downloaded first) into its backend
    (engine/local_backend.py: mlx-lm, or mlx-vlm for a vision model); `name` is the name to report instead of the
    resolved one. For another local model (`backend_name`: its name in config.toml) the weights must fit in the
    memory free now."""

    def load() -> "Backend":
        from mlxclaude.engine.local_backend import open_local_backend
        from mlxclaude.models.resolve import resolve

        log_event("model_loading", kind="request", model=settings.model, backend=backend_name)
        try:
            model = resolve(settings.model or "", pull=True)
            if backend_name is not None:
                check_fits(model.local_path(), backend_name)
            backend = open_local_backend(model.local_path(), name=name or model.name,
                                         context_limit=settings.context_limit,
                                         prefill_step_size=settings.prefill_step_size,
                                         constrain_tools=settings.tool_constraints,
                                         cache_max_bytes=settings.cache_max_bytes,
                                         prompt_cache_dir=paths.cache_dir() / "prompt-cache",
                                         speculative=settings.speculative,
                                         draft_model=str(resolve(settings.draft_model, pull=True).local_path())
                                         if settings.draft_model else None)
        except Exception as exc:
            # what `up` prints when the start fails (daemon/manager.py reads the last error-level event)
            message, hint = (exc.message, exc.hint) if isinstance(exc, MlxClaudeError) else (str(exc), None)
            log_event("model_load_failed", kind="daemon", level="error", model=settings.model, backend=backend_name,
                      message=f"model failed to load: {message}",
                      hint=hint or f"`mlxclaude models check {settings.model}` says what is wrong with it")
            raise
        log_event("model_ready", backend=backend_name, model=backend.info.name, vision=backend.info.supports_vision,
                  context_length=backend.info.context_length,
                  tool_format=backend.info.tool_format.name if backend.info.tool_format else None)
        return backend

    return load


def other_model_loader(settings: ServerSettings) -> Callable[["BackendSpec"], Callable[[], "Backend"]]:
    """The loader of each other local model in config.toml ([backends.NAME] kind = "mlx")."""
    # draft_model drafts for the default model only (another model may not share its tokenizer)
    speculative = "lookup" if settings.speculative == "draft" else settings.speculative
    return lambda spec: mlx_backend_loader(replace(settings, model=spec.model, draft_model=None,
                                                   speculative=speculative), backend_name=spec.name)


def local_model_sight(settings: ServerSettings) -> Callable[["BackendSpec"], bool]:
    """Whether a local model will see images, read from its files (on disk already; nothing is downloaded)."""

    def sees(spec: "BackendSpec") -> bool:
        from mlxclaude.engine.local_backend import sees_images
        from mlxclaude.models.resolve import resolve

        return sees_images(resolve(spec.model or settings.model or "", pull=False).local_path())

    return sees


def check_fits(path: "os.PathLike[str]", backend: str) -> None:
    from mlxclaude.config.units import format_bytes
    from mlxclaude.engine.memory import memory_facts
    from mlxclaude.models.memory import weights_bytes, weights_fit

    weights, available = weights_bytes(path), memory_facts().available_bytes
    if not weights_fit(weights, available):
        raise MlxClaudeError(f"not enough memory for backend {backend!r}: its weights are {format_bytes(weights)}, "
                             f"{format_bytes(available or 0)} is free",
                             hint="give it a smaller model, or route its requests to a remote backend")


def uvicorn_config(app: Any, settings: ServerSettings, **extra: Any):
    """How uvicorn serves the app, here and in the tests: h11 with a deadline on request headers."""
    import uvicorn

    from mlxclaude.daemon.http_protocol import guarded_h11

    return uvicorn.Config(app, http=guarded_h11(settings.header_timeout), log_config=None, log_level="warning",
                          access_log=False, lifespan="on", timeout_graceful_shutdown=5, **extra)


def uvicorn_server(app: Any, settings: ServerSettings):
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            """uvicorn's own SIGINT/SIGTERM handler while it serves."""
            app.state.mlxclaude.begin_shutdown()  # open streams end with an error event, not a cut body
            super().handle_exit(sig, frame)

    return Server(uvicorn_config(app, settings))


def serve(settings: ServerSettings, *, model_name: Optional[str] = None, daemon: bool = True) -> int:
    """Serve until SIGINT or SIGTERM. daemon=False is `mlxclaude serve`: no state file (`up`, `status` and
    `down` do not see it), no HTTP shutdown, and Ctrl-C ends it as an interrupt (exit 130)."""
    from mlxclaude.server.app import create_app

    check_settings(settings)
    sock = listen(settings)
    settings = replace(settings, port=sock.getsockname()[1])
    loader = mlx_backend_loader(settings, name=model_name) if settings.model else None
    app = create_app(settings, loader, routing=load_routing(settings), load=other_model_loader(settings),
                     web_search=load_web_search(), sight=local_model_sight(settings))
    server = uvicorn_server(app, settings)
    url = url_for(settings.host, settings.port)
    local = os.path.expanduser(settings.model or "")
    model_path = os.path.abspath(local) if os.path.isdir(local) else settings.model
    model = model_name or (os.path.basename(local.rstrip("/")) if os.path.isdir(local) else settings.model)
    if daemon:
        def request_exit(*_: object) -> None:
            app.state.mlxclaude.begin_shutdown()
            server.should_exit = True

        app.state.shutdown_callback = request_exit
        # uvicorn re-raises a captured SIGTERM/SIGINT after a graceful exit; with these handlers that is a
        # no-op, so the state file is still removed below (and a signal before serving starts stops it too)
        signal.signal(signal.SIGTERM, request_exit)
        signal.signal(signal.SIGINT, request_exit)
        remember_model(model, model_path)
        write_state(DaemonState(pid=os.getpid(), url=url, host=settings.host, port=settings.port, model=model,
                                model_path=model_path, version=__version__, started_at=time.time(),
                                log_path=str(paths.daemon_log_file()), token=settings.auth_token))
    log_event("daemon_start", kind="daemon", pid=os.getpid(), url=url, model=model, model_path=model_path,
              version=__version__, foreground=None if daemon else True)
    if not settings.is_loopback:
        log_event("non_loopback_bind", kind="daemon", level="warning", host=settings.host)
    try:
        with sock:
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        if daemon:
            remove_state(os.getpid())
        log_event("daemon_stop", kind="daemon", pid=os.getpid())
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
