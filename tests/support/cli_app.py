"""A fresh Typer app with one command module registered, driven by CliRunner."""

from __future__ import annotations

from typing import Callable

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
