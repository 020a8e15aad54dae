"""Fill in a model for `up` / `run` when none is configured: use the obvious local one, or offer a download."""

from __future__ import annotations

import sys
from dataclasses import replace

import typer

from mlxclaude.cli import _output
from mlxclaude.errors import MlxClaudeError


def with_default_model(settings):
    if settings.model:
        return settings
    from mlxclaude.daemon import manager

    if manager.status() is not None:
        return settings  # the running daemon already serves one
    from mlxclaude.models.default import default_model_choice

    choice = default_model_choice()
    rec = choice.recommendation
    if choice.local_name:
        _output.note(f"no model configured; using {choice.local_name} "
                     f"(choose one with `mlxclaude config set model NAME`)")
        return replace(settings, model=choice.local_name)
    offer = f"{rec.repo} ({rec.size_gb:.1f} GB: {rec.reason})"
    if not sys.stdin.isatty():
        raise MlxClaudeError("no model configured",
                             hint=f"`mlxclaude up --model {rec.repo}` fetches the one recommended for this machine; "
                                  "or pass --model with a directory or a name from `mlxclaude models list`")
    try:
        accepted = typer.confirm(f"No model configured. Download the recommended one, {offer}?", default=False,
                                 err=True)
    except typer.Abort:  # end of input at the prompt
        raise MlxClaudeError("interrupted", exit_code=130) from None
    if not accepted:
        raise MlxClaudeError("no model configured", hint="pass --model PATH_OR_NAME, or see `mlxclaude models list`")
    from mlxclaude.config.load import set_config_value
    from mlxclaude.models.hub import pull_model

    pull_model(rec.repo)
    set_config_value("model", rec.repo)
    _output.note(f"model set to {rec.repo} in config.toml")
    return replace(settings, model=rec.repo)
