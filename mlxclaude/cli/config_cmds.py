"""`mlxclaude config show|get|set|unset|path`: the settings in config.toml and where each value comes from."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

config_app = typer.Typer(
    name="config",
    help="Show and change settings (config.toml). Precedence: defaults < config.toml < MLXCLAUDE_* env < flags.",
    no_args_is_help=True,
)

KeyArg = Annotated[str, typer.Argument(help="Setting name, e.g. port or max_output_tokens.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _note(message: str) -> None:
    print(message, file=sys.stderr)


@config_app.command("show")
def show(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every setting: its value and where it came from (default, config or env)."""
    from mlxclaude.config.token import token_file
    from mlxclaude.config.load import load_settings
    from mlxclaude.config.registry import SETTINGS

    resolved = load_settings()
    if json_output:
        data: dict[str, Any] = {"config_file": str(resolved.config_path), "settings": {}}
        for setting in SETTINGS:
            value = resolved.value(setting.name)
            data["settings"][setting.name] = {
                "value": setting.display(value) if setting.secret and value is not None else value,
                "source": resolved.sources[setting.name],
                "default": setting.default,
                "type": setting.type_label,
                "env": setting.env,
                "description": setting.description,
            }
        print(json.dumps(data, indent=2))
        return

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("from", no_wrap=True)
    table.add_column("description")
    for setting in SETTINGS:
        source = resolved.sources[setting.name]
        shown = setting.display(resolved.value(setting.name))
        if setting.name == "auth_token" and source == "default" and token_file().exists():
            shown = f"(generated: {token_file()})"
        value = Text(shown, style="dim" if source == "default" else "bold")
        where = setting.env if source == "env" else source
        table.add_row(setting.name, value, Text(where, style=_SOURCE_STYLES[source]), setting.description)
    Console(soft_wrap=False).print(table)
    exists = "" if resolved.config_path.exists() else " (not created yet)"
    _note(f"config file: {resolved.config_path}{exists}")


_SOURCE_STYLES = {"default": "dim", "config": "cyan", "env": "magenta", "flag": "green"}


@config_app.command("get")
def get(key: KeyArg) -> None:
    """Print one setting's value in effect (nothing when unset); auth_token prints the token in use."""
    from mlxclaude.config.token import resolve_auth_token
    from mlxclaude.config.load import load_settings
    from mlxclaude.config.registry import lookup

    setting = lookup(key)
    resolved = load_settings()
    value = resolved.value(setting.name)
    if setting.name == "auth_token":
        value = resolve_auth_token(resolved.settings)
    if value is None:
        return
    if isinstance(value, bool):
        value = "true" if value else "false"
    print(value)


@config_app.command("set")
def set_(key: KeyArg,
         value: Annotated[str, typer.Argument(help="The new value (checked against the setting's type).",
                                              show_default=False)]) -> None:
    """Store a setting in config.toml (use `auto` or `none` for an optional setting's default)."""
    from mlxclaude.config.load import set_config_value
    from mlxclaude.config.toml import default_config_path

    setting, stored = set_config_value(key, value)
    path = default_config_path()
    if stored is None:
        _note(f"{setting.name} removed from {path}: now {setting.unset_label}")
    else:
        _note(f"{setting.name} = {setting.display(stored)} written to {path}")
    _after_change(setting.name, setting.env)


@config_app.command("unset")
def unset(key: KeyArg) -> None:
    """Remove a setting from config.toml, so its default applies."""
    from mlxclaude.config.load import unset_config_value
    from mlxclaude.config.toml import default_config_path

    setting, removed = unset_config_value(key)
    path = default_config_path()
    if removed:
        _note(f"{setting.name} removed from {path}")
        _after_change(setting.name, setting.env)
    else:
        _note(f"{setting.name} is not set in {path}")


@config_app.command("path")
def path() -> None:
    """Print the path of config.toml."""
    from mlxclaude.config.toml import default_config_path

    print(default_config_path())


def _after_change(name: str, env: str) -> None:
    if os.environ.get(env):
        _note(f"note: {env} is set in the environment and overrides config.toml")
    from mlxclaude import paths

    if paths.state_file().exists():
        _note("note: the daemon is running; `mlxclaude restart` applies the change")
