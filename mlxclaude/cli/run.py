"""`mlxclaude run`: start the daemon if needed, then Claude Code on it (a thin wrapper over mlxclaude.claude)."""

from typing import Annotated, Optional

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command
from mlxclaude.cli._options import ForceOption, ModelOption


def register(app: typer.Typer) -> None:
    app.command("run", cls=Command)(run)  # claude's own options come after `--`: a mistake before it is run's


CLIENTS = ("claude", "codex")


def run(
    model: ModelOption = None,
    force: ForceOption = False,
    client: Annotated[str, typer.Option(
        "--client", metavar="CLIENT", help="The agent to launch: claude (Claude Code) or codex (Codex CLI, on "
                                           "the daemon's OpenAI Responses API).")] = "claude",
    claude_args: Annotated[Optional[list[str]], typer.Argument(
        metavar="-- CLIENT_ARGS", show_default=False, help="Passed to the client as they are.")] = None,
) -> None:
    """Start the daemon if needed, then run Claude Code (or Codex CLI) on it.

    Exits with the client's exit code. A running daemon is used as it is; with --model it must serve
    that model (`mlxclaude restart --model` switches). A repo id not downloaded yet is downloaded first,
    here, with a progress bar. A model whose context cannot hold Claude Code's prompt is refused before
    anything starts, unless --force.
    """
    from mlxclaude.claude import build_env, launch_claude, require_claude
    from mlxclaude.cli._endpoint import fetch_health, served_model, warn_small_context
    from mlxclaude.cli._model_choice import with_default_model
    from mlxclaude.cli._routes import tier_choice
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.errors import UsageError

    if client not in CLIENTS:
        raise UsageError(f"unknown client {client!r}", hint="--client claude or --client codex")
    if client == "codex":
        return run_codex(model, force, list(claude_args or []))
    claude = require_claude()   # before starting a daemon we would not use
    settings = with_default_model(ServerSettings.from_env(model=model))
    tiers = tier_choice(settings.model)   # a bad [routes] table stops here, before anything starts
    if tiers.note:
        _output.note(tiers.note)  # first: what answers, which Claude Code's banner will not say
    state, token, fit = start_daemon(settings, explicit=model is not None, force=force, command="mlxclaude run")
    model_id, context = served_model(fetch_health(state.url), state.model or settings.model, settings.context_limit,
                                     keep_tiers=tiers.keep_tiers)
    env = build_env(base_url=state.url, token=token, model_id=model_id, context_length=context,
                    max_output_tokens=settings.max_output_tokens, keep_tiers=tiers.keep_tiers,
                    haiku_model=tiers.haiku_model)
    if fit is not None:  # one verdict, in the words `models check` uses
        if fit.status != "ok":
            _output.warning(fit.detail())
    else:
        warn_small_context(context)
    code = launch_claude(claude, list(claude_args or []), env)
    raise SystemExit(code)


def start_daemon(settings, *, explicit: bool, force: bool, command: str):
    """The model checked (or downloaded) as `command` would, then the daemon started or found: (its state, the
    token clients send, the model's fit verdict or None)."""
    from mlxclaude.cli._endpoint import auth_token
    from mlxclaude.cli._model_choice import prepare_model
    from mlxclaude.daemon import manager

    fit = prepare_model(settings, explicit=explicit, force=force, command=command)
    state = manager.start(settings, on_progress=_output.note, explicit_model=explicit)
    return state, getattr(state, "token", None) or auth_token(settings), fit


def run_codex(model: Optional[str], force: bool, args: list[str]) -> None:
    """Codex CLI on the daemon: its Responses API, the served model, the daemon's token."""
    from mlxclaude.cli._endpoint import fetch_health
    from mlxclaude.cli._model_choice import with_default_model
    from mlxclaude.codex import launch_codex, require_codex
    from mlxclaude.config.registry import ServerSettings

    require_codex()   # before starting a daemon we would not use
    settings = with_default_model(ServerSettings.from_env(model=model))
    state, token, fit = start_daemon(settings, explicit=model is not None, force=force,
                                     command="mlxclaude run --client codex")
    health = fetch_health(state.url) or {}
    served = str(health.get("model") or state.model or settings.model or "local")
    _output.note(f"codex → {served} at {state.url}/v1 (Responses API)")
    if fit is not None and fit.status != "ok":
        _output.warning(fit.detail())
    raise SystemExit(launch_codex(args, base_url=state.url, token=token or "mlxclaude", model=served,
                                  context_window=health.get("context_length")))
