"""`mlxclaude settings wire | unwire | show`: Claude Code's settings.json pointed at the daemon, or not."""

from pathlib import Path

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command, new_app
from mlxclaude.cli._options import JsonOption, ProjectOption
from mlxclaude.errors import MlxClaudeError

settings_app = new_app(
    name="settings",
    help="Point Claude Code's settings.json at the daemon, or undo that.\n\nThen a plain `claude` uses the daemon.")


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")


@settings_app.command("wire", cls=Command)
def wire(project: ProjectOption = False) -> None:
    """Point Claude Code at the daemon in settings.json.

    The file's previous content is backed up; `mlxclaude settings unwire` restores it.
    """
    from mlxclaude.claude import wire_settings

    env, note = wire_env()
    result = wire_settings(env, project_dir=Path.cwd() if project else None)
    parts = [f"{len(result.added)} added", f"{len(result.replaced)} replaced"]
    _output.note(f"wired {result.path} ({', '.join(parts)}){note}")
    if result.replaced:
        _output.note(f"  replaced: {', '.join(result.replaced)} (unwire restores them)")
    _output.note(f"  backup: {result.backup}" if result.backup else "  (the file is new: unwire deletes it)")
    _output.note("  undo: mlxclaude settings unwire" + (" --project" if project else ""))


@settings_app.command("unwire", cls=Command)
def unwire(project: ProjectOption = False) -> None:
    """Undo `settings wire`: the file goes back to what it was.

    Edits made to it since the wiring are kept.
    """
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
    _output.note(messages[result.action])
    if result.kept and result.action in ("merged", "kept"):
        _output.note(f"  changed since wiring, left alone: {', '.join(result.kept)}")


@settings_app.command("show", cls=Command)
def show(project: ProjectOption = False, as_json: JsonOption = False) -> None:
    """Show what settings.json sets for Claude Code, and who set it."""
    from mlxclaude.claude import show_settings

    info = show_settings(project_dir=Path.cwd() if project else None)
    if as_json:
        _output.print_json(info)
        return
    import json

    status = "wired by mlxclaude" if info["wired"] else "not wired by mlxclaude"
    if info["wired"] and info["edited_since_wire"]:
        status += " (edited since)"
    _output.echo(f"{info['path']}: {status}" + ("" if info["exists"] else " (file does not exist)"))
    # who set each key first, then the key, then its value: a terminal narrower than a long value elides the
    # value's middle (piped output keeps it whole)
    console = _output.stdout_console()
    room = console.width if console.is_terminal else None
    by_width = max((len(entry["by"]) + 2 for entry in info["env"].values()), default=0)
    key_width = max((len(key) for key in info["env"]), default=0)
    for key, entry in info["env"].items():
        value = json.dumps(entry["value"])
        if room is not None:
            value = _output.elide_middle(value, max(12, room - by_width - key_width - 6))
        _output.echo(f"  {'[' + entry['by'] + ']':<{by_width}}  {key:<{key_width}}  {value}")
    for other in info["shadowed_by"]:
        _output.warning(f"{other['path']} also sets {', '.join(other['keys'])} and takes precedence")


def wire_env() -> tuple[dict[str, str], str]:
    """The env for settings.json: the running daemon's address and token (else the configured ones);
    model id and context from its /health, else from the configuration."""
    from mlxclaude.claude import build_env
    from mlxclaude.cli._endpoint import daemon_endpoint, fetch_health, served_model, warn_small_context
    from mlxclaude.cli._routes import tier_choice
    from mlxclaude.config.registry import ServerSettings

    settings = ServerSettings.from_env()
    tiers = tier_choice(settings.model)
    url, token = daemon_endpoint(settings)
    health = fetch_health(url)
    note = ""
    if not health:
        from mlxclaude.daemon.routes import needs_local_model

        if not settings.model and needs_local_model(None):
            raise MlxClaudeError("no model: the daemon is not running and none is configured",
                                 hint="mlxclaude up --model MODEL, or mlxclaude config set model MODEL")
        if settings.context_limit is None:
            note = "; context unknown while the daemon is down, so compaction uses Claude Code's defaults"
    model_id, context = served_model(health, None if health else settings.model, settings.context_limit,
                                     keep_tiers=tiers.keep_tiers)
    env = build_env(base_url=url, token=token, model_id=model_id, context_length=context,
                    max_output_tokens=settings.max_output_tokens, keep_tiers=tiers.keep_tiers,
                    haiku_model=tiers.haiku_model)
    if tiers.note:
        _output.note(tiers.note)
    warn_small_context(context)
    return env, note
