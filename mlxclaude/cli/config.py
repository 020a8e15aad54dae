"""`mlxclaude config show|get|set|unset|path`: the settings in config.toml and where each value comes from."""

import os
from typing import Annotated, Any

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command, new_app
from mlxclaude.cli._options import JsonOption

config_app = new_app(
    name="config",
    help="Show and change settings (config.toml).\n\nPrecedence: defaults < config.toml < MLXCLAUDE_* env < flags.",
)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", show_default=False,
                                        help="Setting name, e.g. port or max_output_tokens.")]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show", cls=Command)
def show(json_output: JsonOption = False) -> None:
    """Every setting, its value and where the value comes from.

    The source is the default, config.toml or an MLXCLAUDE_* environment variable.
    """
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
        _output.print_json(data)
        return

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
    _output.stdout_console().print(table)
    exists = "" if resolved.config_path.exists() else " (not created yet)"
    _output.note(f"config file: {resolved.config_path}{exists}")


_SOURCE_STYLES = {"default": "dim", "config": "cyan", "env": "magenta", "flag": "green"}


@config_app.command("get", cls=Command)
def get(key: KeyArg) -> None:
    """Print one setting's value in effect.

    Nothing when it is unset; auth_token prints the token in use.
    """
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
    _output.echo(value)


@config_app.command("set", cls=Command)
def set_(key: KeyArg,
         value: Annotated[str, typer.Argument(metavar="VALUE", show_default=False,
                                              help="The new value (checked against the setting's type).")]) -> None:
    """Store a setting in config.toml.

    The value is checked against the setting's type; `auto` or `none` gives an optional setting its default.
    """
    from mlxclaude.config.load import set_config_value
    from mlxclaude.config.toml import default_config_path

    setting, stored = set_config_value(key, value)
    path = default_config_path()
    if stored is None:
        _output.note(f"{setting.name} removed from {path}: now {setting.unset_label}")
    else:
        _output.note(f"{setting.name} = {setting.display(stored)} written to {path}")
    _after_change(setting.name, setting.env)


@config_app.command("unset", cls=Command)
def unset(key: KeyArg) -> None:
    """Remove a setting from config.toml, so its default applies."""
    from mlxclaude.config.load import unset_config_value
    from mlxclaude.config.toml import default_config_path

    setting, removed = unset_config_value(key)
    path = default_config_path()
    if removed:
        _output.note(f"{setting.name} removed from {path}")
        _after_change(setting.name, setting.env)
    else:
        _output.note(f"{setting.name} is not set in {path}")


@config_app.command("path", cls=Command)
def path() -> None:
    """Print the path of config.toml."""
    from mlxclaude.config.toml import default_config_path

    _output.echo(default_config_path())


def _after_change(name: str, env: str) -> None:
    if os.environ.get(env):
        _output.note(f"note: {env} is set in the environment and overrides config.toml")
    from mlxclaude import paths

    if paths.state_file().exists():
        _output.note("note: the daemon is running; `mlxclaude restart` applies the change")
