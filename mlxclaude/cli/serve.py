"""`mlxclaude serve`: the daemon's serve path in the foreground, without a state file (`up` runs it detached)."""

from typing import Annotated, Optional

import typer

from mlxclaude.cli._app import Command
from mlxclaude.cli._options import HostOption, ModelOption, PortOption


def register(app: typer.Typer) -> None:
    app.command("serve", cls=Command)(serve)


def serve(
    model: ModelOption = None,
    host: HostOption = None,
    port: PortOption = None,
    auth_token: Annotated[Optional[str], typer.Option(
        "--auth-token", metavar="TOKEN", show_default="none on loopback unless configured",
        help="Require this token (x-api-key or Bearer).")] = None,
    context_limit: Annotated[Optional[int], typer.Option(
        "--context", metavar="TOKENS", show_default="the model's own unless configured",
        help="Cap the context window.")] = None,
    max_output_tokens: Annotated[Optional[int], typer.Option(
        "--max-output-tokens", metavar="TOKENS", show_default="no cap unless configured",
        help="Cap every reply at this many tokens.")] = None,
) -> None:
    """Serve the Anthropic Messages API in the foreground.

    Settings not given as flags come from MLXCLAUDE_* variables, then config.toml (`mlxclaude config show`).
    """
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon.serve import serve as run_server

    settings = ServerSettings.from_env(model=model, host=host, port=port, auth_token=auth_token,
                                       context_limit=context_limit, max_output_tokens=max_output_tokens)
    run_server(settings, daemon=False)
