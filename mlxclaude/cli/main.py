"""The `mlxclaude` command. Commands stay thin and import heavy modules only when they run."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional

import typer

from mlxclaude import __version__
from mlxclaude.errors import MlxClaudeError

app = typer.Typer(
    name="mlxclaude",
    help="Run Claude Code on a local MLX model.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlxclaude {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Run Claude Code on a local MLX model."""


@app.command()
def serve(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model directory (mlx-lm format).",
                                        envvar="MLXCLAUDE_MODEL"),
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind [default: 127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port to bind [default: 8765]."),
    auth_token: Optional[str] = typer.Option(None, "--auth-token", envvar="MLXCLAUDE_AUTH_TOKEN",
                                             help="Require this token (x-api-key or Bearer)."),
    context_limit: Optional[int] = typer.Option(None, "--context", help="Cap the context window (tokens)."),
    max_output_tokens: Optional[int] = typer.Option(None, "--max-output-tokens",
                                                    help="Cap every reply at this many tokens."),
) -> None:
    """Serve the Anthropic Messages API in the foreground."""
    from mlxclaude.serve import run_server
    from mlxclaude.config.registry import ServerSettings

    settings = ServerSettings.from_env(model=model, host=host, port=port, auth_token=auth_token,
                                       context_limit=context_limit, max_output_tokens=max_output_tokens)
    run_server(settings)


def register_commands() -> None:
    from mlxclaude.cli import claude_cmds, config_cmds, daemon_cmds, doctor_cmd, logs_cmd, models_cmds

    for module in (daemon_cmds, claude_cmds, models_cmds, logs_cmd, config_cmds, doctor_cmd):
        module.register(app)


register_commands()


def click_exceptions():
    """Typer ≥0.29 vendors click as typer._click; older versions use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions
    return exceptions


def main(argv: Optional[list[str]] = None) -> None:
    exceptions = click_exceptions()
    try:
        result = app(args=argv, standalone_mode=False)
    except MlxClaudeError as exc:
        if os.environ.get("MLXCLAUDE_DEBUG"):
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
