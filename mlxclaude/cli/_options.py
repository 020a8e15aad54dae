"""Options that several commands share, declared once: `def up(model: ModelOption = None)`.

Each has an explicit metavar (Typer would print `<str>`), and a `show_default` text where the default is
not the Python one: the configuration supplies it, or for `restart` the daemon that was running.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from mlxclaude.cli._complete import model_names

RUNNING = "the running daemon's"


def _model(default: str):
    return Annotated[Optional[str], typer.Option(
        "--model", "-m", metavar="MODEL", show_default=default, autocompletion=model_names,
        help="A model directory, a name from `mlxclaude models list`, or a Hugging Face repo id.")]


def _host(default: str):
    return Annotated[Optional[str], typer.Option(
        "--host", metavar="HOST", show_default=default,
        help="Address to bind; any but loopback needs a token.")]


def _port(default: str):
    return Annotated[Optional[int], typer.Option(
        "--port", "-p", metavar="PORT", show_default=default, help="Port to bind; 0 picks a free one.")]


ModelOption = _model("the configured model")
HostOption = _host("127.0.0.1 unless configured")
PortOption = _port("8765 unless configured")

# restart keeps what the running daemon had unless told otherwise
RestartModelOption = _model(RUNNING)
RestartHostOption = _host(RUNNING)
RestartPortOption = _port(RUNNING)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

# up, run, restart: a model whose context cannot hold Claude Code's prompt is refused without it
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Start even a model whose context cannot hold Claude Code's prompt (see `models check`).")]

ProjectOption = Annotated[bool, typer.Option(
    "--project", help="This project's ./.claude/settings.local.json, not ~/.claude/settings.json.")]
