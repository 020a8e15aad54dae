"""The model `up`, `run` and `restart` start with: fill one in when none is configured (the obvious local
one, or a download offered), download it in the foreground, and refuse one Claude Code cannot work with."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import typer

from mlxclaude.cli import _output
from mlxclaude.errors import MlxClaudeError


def with_default_model(settings):
    if settings.model:
        return settings
    from mlxclaude.daemon import manager
    from mlxclaude.daemon.routes import needs_local_model

    if manager.status() is not None:
        return settings  # the running daemon already serves one
    if not needs_local_model(None):
        return settings  # every route goes to a remote backend: nothing local to load
    from mlxclaude.models.default import default_model_choice

    choice = default_model_choice()
    rec = choice.recommendation
    if choice.local_name:
        _output.note(f"no model configured; using {choice.local_name} "
                     f"(choose one with `mlxclaude config set model NAME`)")
        return replace(settings, model=choice.local_name)
    offer = f"{rec.repo} ({rec.size_gb:.1f} GB: {rec.reason})"
    from mlxclaude.models.hub import hub_reachable

    if not hub_reachable():  # offering a download that cannot happen is a dead end
        raise MlxClaudeError("no model configured, and the Hugging Face hub cannot be reached to download one",
                             hint="mlxclaude up --model PATH_OR_NAME with a model already here (`mlxclaude models "
                                  "list`) or an mlx-lm directory, or import one: `mlxclaude models import FILE.gguf`, "
                                  "`ollama:NAME` or `lmstudio:NAME`")
    if not sys.stdin.isatty():
        raise MlxClaudeError("no model configured",
                             hint=f"`mlxclaude up --model {rec.repo}` fetches the one recommended for this machine; "
                                  "or pass --model with a directory or a name from `mlxclaude models list`")
    if rec.note:  # e.g. the CPU's speed, said before anything is downloaded
        _output.note(rec.note)
    try:
        accepted = typer.confirm(f"No model configured. Download the recommended one, {offer}?", default=False,
                                 err=True)
    except typer.Abort:  # end of input at the prompt
        raise MlxClaudeError("interrupted", exit_code=130) from None
    if not accepted:
        raise MlxClaudeError("no model configured", hint="pass --model PATH_OR_NAME, or see `mlxclaude models list`")
    from mlxclaude.cli._progress import pull_with_progress
    from mlxclaude.config.load import set_config_value

    pull_with_progress(rec.repo)
    set_config_value("model", rec.repo)
    _output.note(f"model set to {rec.repo} in config.toml")
    return replace(settings, model=rec.repo)


def prepare_model(settings, *, explicit: bool, force: bool, command: str, restarting: bool = False):
    """Before a daemon starts (or claude launches on a running one): the model that will serve, downloaded if it
    is a repo id not in the Hugging Face cache yet (in the foreground, with the progress bar: the daemon's start
    timeout never runs during a download) and, unless `force`, refused when Claude Code's prompt does not fit
    its context (models/context_fit.py: what `models check` and `doctor` say). `restarting`: the running
    daemon is about to be replaced by one serving settings.model. Returns the ContextFit, or None when nothing
    was measured (no model, or a model the daemon will report on itself); forced, an unfit model's ContextFit
    comes back for the caller to warn with."""
    from mlxclaude.daemon.state import read_state
    from mlxclaude.models.resolve import resolve

    running = read_state()
    requested = None
    if settings.model:
        try:
            requested = resolve(settings.model, pull=False)
        except MlxClaudeError:
            return None  # the manager reports it, as it always has
    if running is not None and not restarting:
        from mlxclaude.daemon.manager import same_model

        if explicit and requested is not None and (requested.path is None
                                                   or not same_model(running, str(requested.path))):
            return None  # another model than the one running: the manager refuses that
        if force or not running.model_path:
            return None
        # a model that would work replaces the running one with restart
        return _refuse_unfit(Path(running.model_path), running.model, settings, "mlxclaude restart", loaded=True)
    if requested is None:
        return None
    path = requested.path
    if path is None:
        from mlxclaude.cli._progress import pull_with_progress

        path = pull_with_progress(requested.name)
        _output.note(f"downloaded {requested.name} → {path}")
    # a daemon that is being replaced still holds its model's memory: free memory says nothing then
    return _refuse_unfit(path, requested.name, settings, command, loaded=running is not None, force=force)


def _refuse_unfit(path, name, settings, command: str, *, loaded: bool, force: bool = False):
    """The model's ContextFit (None when it cannot be measured: the daemon's load says why); MlxClaudeError,
    naming a model that would work, when Claude Code's prompt does not fit, unless `force` (the caller then
    warns in the same words). `loaded`: the running daemon holds it already, so free memory does not bound its
    context."""
    from mlxclaude.models.context_fit import fit_without_loading

    fit = fit_without_loading(path, name=name, context_limit=settings.context_limit, loaded=loaded)
    if fit is not None and not fit.fits and not force:
        raise fit.refusal(command)
    return fit
