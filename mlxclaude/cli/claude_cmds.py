"""`mlxclaude run` and `mlxclaude settings wire|unwire|show`: thin wrappers over mlxclaude.claude."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mlxclaude.errors import MlxClaudeError

HEALTH_TIMEOUT = 5.0


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
    settings_app = typer.Typer(name="settings", no_args_is_help=True,
                               help="Wire Claude Code's settings.json to the daemon (so a plain `claude` uses it), "
                                    "or undo that.")
    settings_app.command("wire")(wire)
    settings_app.command("unwire")(unwire)
    settings_app.command("show")(show)
    app.add_typer(settings_app, name="settings")


# -- run ------------------------------------------------------------------------------------------


def run(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model to serve (starts or checks the daemon)."),
    claude_args: Optional[list[str]] = typer.Argument(None, metavar="-- CLAUDE_ARGS",
                                                      help="Passed to claude as they are (after --)."),
) -> None:
    """Start the daemon if needed, then run Claude Code on it; exits with Claude Code's exit code."""
    from mlxclaude.claude import build_env, launch_claude, require_claude
    from mlxclaude.daemon import manager
    from mlxclaude.config.registry import ServerSettings

    claude = require_claude()   # before starting a daemon we would not use
    from mlxclaude.cli.model_choice import with_default_model

    settings = with_default_model(ServerSettings.from_env(model=model))
    state = manager.start(settings, on_progress=_progress)
    token = getattr(state, "token", None) or _auth_token(settings)
    health = fetch_health(state.url) or {}
    model_id = health.get("model_id") or _fallback_model_id(state.model or settings.model)
    context = health.get("context_length") or getattr(state, "context_length", None) or settings.context_limit
    env = build_env(base_url=state.url, token=token, model_id=model_id, context_length=context,
                    max_output_tokens=settings.max_output_tokens)
    _warn_small_context(context)
    code = launch_claude(claude, [*(claude_args or []), *ctx.args], env)
    raise SystemExit(code)


# -- settings wire / unwire / show ----------------------------------------------------------------


def wire(project: bool = typer.Option(False, "--project",
                                      help="Write ./.claude/settings.local.json instead of ~/.claude/settings.json.")
         ) -> None:
    """Point Claude Code at the daemon in settings.json (a backup is kept; undo with `settings unwire`)."""
    from mlxclaude.claude import wire_settings

    env, note = wire_env()
    result = wire_settings(env, project_dir=Path.cwd() if project else None)
    parts = [f"{len(result.added)} added", f"{len(result.replaced)} replaced"]
    _err(f"wired {result.path} ({', '.join(parts)}){note}")
    if result.replaced:
        _err(f"  replaced: {', '.join(result.replaced)} (unwire restores them)")
    _err(f"  backup: {result.backup}" if result.backup else "  (the file is new: unwire deletes it)")
    _err("  undo: mlxclaude settings unwire" + (" --project" if project else ""))


def unwire(project: bool = typer.Option(False, "--project", help="Undo the wiring of ./.claude/settings.local.json.")
           ) -> None:
    """Undo `settings wire`: the file goes back to what it was (your later edits are kept)."""
    from mlxclaude.claude import unwire_settings

    result = unwire_settings(project_dir=Path.cwd() if project else None)
    messages = {
        "not-wired": f"{result.path} is not wired by mlxclaude; nothing to do",
        "restored": f"restored {result.path} to its original bytes",
        "deleted": f"removed {result.path} (mlxclaude created it)",
        "merged": f"removed mlxclaude's keys from {result.path}; your other edits are kept",
        "kept": f"{result.path} no longer holds any of mlxclaude's values; left as it is",
        "missing": f"{result.path} is gone already; forgot the wiring",
    }
    _err(messages[result.action])
    if result.kept and result.action in ("merged", "kept"):
        _err(f"  changed since wiring, left alone: {', '.join(result.kept)}")


def show(project: bool = typer.Option(False, "--project", help="Show ./.claude/settings.local.json."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """What the settings file sets for Claude Code's endpoint, and who set it."""
    from mlxclaude.claude import show_settings

    info = show_settings(project_dir=Path.cwd() if project else None)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    status = "wired by mlxclaude" if info["wired"] else "not wired by mlxclaude"
    if info["wired"] and info["edited_since_wire"]:
        status += " (edited since)"
    typer.echo(f"{info['path']}: {status}" + ("" if info["exists"] else " (file does not exist)"))
    width = max((len(key) for key in info["env"]), default=0)
    for key, entry in info["env"].items():
        typer.echo(f"  {key:<{width}}  {json.dumps(entry['value'])}  [{entry['by']}]")
    for other in info["shadowed_by"]:
        _err(f"warning: {other['path']} also sets {', '.join(other['keys'])} and takes precedence")


def wire_env() -> tuple[dict[str, str], str]:
    """The env for settings.json: the running daemon's address and token (else the configured ones);
    model id and context from its /health, else from the configuration."""
    from mlxclaude.claude import build_env
    from mlxclaude.config.registry import ServerSettings

    settings = ServerSettings.from_env()
    url, token = _daemon_endpoint(settings)
    health = fetch_health(url)
    note = ""
    if health:
        model_id, context = health.get("model_id"), health.get("context_length")
    else:
        if not settings.model:
            raise MlxClaudeError("no model: the daemon is not running and none is configured",
                                 hint="mlxclaude up --model MODEL, or mlxclaude config set model MODEL")
        model_id, context = _fallback_model_id(settings.model), settings.context_limit
        if context is None:
            note = "; context unknown while the daemon is down, so compaction uses Claude Code's defaults"
    env = build_env(base_url=url, token=token, model_id=model_id, context_length=context,
                    max_output_tokens=settings.max_output_tokens)
    _warn_small_context(context)
    return env, note


# -- helpers --------------------------------------------------------------------------------------


def fetch_health(url: str, timeout: float = HEALTH_TIMEOUT) -> Optional[dict[str, Any]]:
    """The daemon's /health JSON when it is up and ready; None otherwise."""
    from mlxclaude.daemon.client import health

    body = health(url.rstrip("/"), timeout=timeout)
    return body if body is not None and body.get("status") == "ok" else None


def _daemon_endpoint(settings: Any) -> tuple[str, Optional[str]]:
    """(URL, token) of the running daemon, which may have been started on another port than the
    configured one; the configured ones when none runs."""
    from mlxclaude.daemon.state import read_state, url_for

    state = read_state()
    if state is not None:
        return state.url, state.token or _auth_token(settings)
    return url_for(settings.host, settings.port), _auth_token(settings)


def _auth_token(settings: Any) -> Optional[str]:
    """The token the daemon requires: configured, else the generated per-user one."""
    from mlxclaude.config.token import resolve_auth_token

    return resolve_auth_token(settings)


def _fallback_model_id(name: Optional[str]) -> str:
    from mlxclaude.claude import local_model_id

    if not name:
        raise MlxClaudeError("the daemon did not report its model", hint="mlxclaude status")
    path = Path(name).expanduser()
    return local_model_id(path.name if path.is_dir() or name.startswith(("/", ".", "~")) else name)


def _warn_small_context(context: Optional[int]) -> None:
    from mlxclaude.claude.env import context_warning

    warning = context_warning(context)
    if warning:
        _err(f"warning: {warning}")


def _progress(message: str) -> None:
    _err(message)


def _err(message: str) -> None:
    print(message, file=sys.stderr)
