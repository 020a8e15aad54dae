"""The `mlxclaude` command: the Typer app, its command modules, and the entry point.

Each command group lives in the module of its name (daemon: up/down/status/restart, run, settings, models,
logs, config, doctor, serve); they import heavy modules only when they run. cli/_app.py says how Typer
is set up, _options.py holds the shared options, _output.py the one way to print.
"""

import os
import sys
from typing import Annotated, Optional

import typer

from mlxclaude import __version__
from mlxclaude.cli import _output
from mlxclaude.cli._app import new_app
from mlxclaude.errors import MlxClaudeError

app = new_app(name="mlxclaude", help="Run Claude Code on a local MLX model.")


def _print_version(value: bool) -> None:
    if value:
        _output.echo(f"mlxclaude {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Run Claude Code on a local MLX model."""


def register_commands(target: typer.Typer) -> None:
    from mlxclaude.cli import config, daemon, doctor, logs, models, run, serve, settings

    for module in (serve, daemon, run, settings, models, logs, config, doctor):
        module.register(target)


register_commands(app)


def main(argv: Optional[list[str]] = None) -> None:
    """The console script. Typer reports usage errors (exit 2) and turns Ctrl-C into exit 130; an
    MlxClaudeError becomes `error: …` and `hint: …` on stderr and its exit code (traceback with MLXCLAUDE_DEBUG)."""
    try:
        app(args=argv, prog_name="mlxclaude")
    except MlxClaudeError as exc:
        if os.environ.get("MLXCLAUDE_DEBUG"):
            import traceback

            traceback.print_exc()
        _output.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
