"""A fresh Typer app with one command module registered, driven by CliRunner; or the real entry point."""

from __future__ import annotations

from typing import Callable

import pytest
import typer
from typer.testing import CliRunner


def cli_for(register: Callable[[typer.Typer], None], **defaults) -> Callable:
    """`invoke(*args, **kw)` on an app holding only what `register` adds; `defaults` go to every call."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """test app"""

    register(app)
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(app, list(args), **(defaults | kw))


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mlxclaude ARGS` through cli.main.main, which turns errors into
    one line plus a hint and an exit code."""
    from mlxclaude.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err
