"""Run the server in the foreground (the daemon wraps this): `mlxclaude serve`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlxclaude.errors import MlxClaudeError, UsageError
from mlxclaude.config.registry import ServerSettings


def check_settings(settings: ServerSettings) -> None:
    if not settings.model:
        raise UsageError("no model given", hint="pass --model PATH (an mlx-lm model directory)")
    from mlxclaude.engine.loader import is_repo_id
    from mlxclaude.models.catalog import find_model

    model = settings.model
    if not Path(model).expanduser().is_dir() and not is_repo_id(model) and find_model(model) is None:
        raise MlxClaudeError(f"model directory not found: {model}",
                             hint="pass a model directory, a name from `mlxclaude models list`, or a repo id (org/name)")
    if not settings.is_loopback and not settings.auth_token:
        raise UsageError(f"refusing to bind {settings.host} without a token",
                         hint="set --auth-token or MLXCLAUDE_AUTH_TOKEN, or bind 127.0.0.1")


def run_server(settings: ServerSettings) -> None:
    """Bind first, so a busy port fails at once rather than after the model has loaded."""
    import uvicorn

    from mlxclaude.daemon.serve import listen
    from mlxclaude.server.app import create_app, mlx_backend_loader

    check_settings(settings)
    sock = listen(settings)
    settings = replace(settings, port=sock.getsockname()[1])
    app = create_app(settings, mlx_backend_loader(settings))
    with sock:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
