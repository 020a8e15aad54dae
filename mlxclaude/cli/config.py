"""`mlxclaude config show|get|set|unset|path`: the settings in config.toml and where each value comes from."""

import os
from typing import Annotated, Any

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command, new_app
from mlxclaude.cli._complete import setting_names
from mlxclaude.cli._options import JsonOption
from mlxclaude.errors import MlxClaudeError

config_app = new_app(
    name="config",
    help="Show and change settings (config.toml).\n\nPrecedence: defaults < config.toml < MLXCLAUDE_* env < flags.",
)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", show_default=False, autocompletion=setting_names,
                                        help="Setting name, e.g. port or max_output_tokens.")]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show", cls=Command)
def show(json_output: JsonOption = False,
         wide: Annotated[bool, typer.Option("--wide", "-w", help="Full values and descriptions, wrapped.")] = False,
         ) -> None:
    """Every setting, its value and where the value comes from.

    The source is the default, config.toml or an MLXCLAUDE_* environment variable. One line per setting,
    fitted to the terminal (long paths elided in the middle); --wide shows everything.
    """
    from mlxclaude.config.load import load_settings
    from mlxclaude.config.registry import BACKEND_KEY_REGISTRY, SETTINGS
    from mlxclaude.config.token import token_file

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
        data["backends"] = {name: {key: {"value": value, "source": source, "description": description}
                                   for key, value, source, description in keys}
                            for name, keys in _backend_keys(resolved.config_path)}
        _output.print_json(data)
        return

    rows = []
    for setting in SETTINGS:
        source = resolved.sources[setting.name]
        shown = setting.display(resolved.value(setting.name))
        if setting.name == "auth_token" and source == "default" and token_file().exists():
            shown = f"(generated: {token_file()})"
        rows.append((setting.name, shown, source, setting.env if source == "env" else source, setting.description))
    for name, keys in _backend_keys(resolved.config_path):
        for key, value, source, description in keys:
            shown = BACKEND_KEY_REGISTRY[key].display(value)
            rows.append((f"backends.{name}.{key}", shown, source, source, description))
    console = _output.stdout_console()
    elided = _print_wide(console, rows) if wide else _print_compact(console, rows)
    exists = "" if resolved.config_path.exists() else " (not created yet)"
    _output.note(f"config file: {resolved.config_path}{exists}")
    if elided:
        _output.note("(shortened to fit the terminal: --wide shows everything)")


def _backend_keys(config_path) -> list[tuple[str, list[tuple[str, Any, str, str]]]]:
    """Each [backends.NAME] of config.toml: (key, value, "config" or "default", description) for every key its
    kind takes that is set or has a default (config/registry.py's BACKEND_KEYS)."""
    from mlxclaude.config.registry import BACKEND_KEYS
    from mlxclaude.config.toml import read_config

    try:
        tables = read_config(config_path).get("backends")
    except MlxClaudeError:
        return []  # the settings above already said what is wrong with the file
    found = []
    for name, table in (tables.items() if isinstance(tables, dict) else ()):
        if not isinstance(table, dict):
            continue
        keys = [(key.name, table[key.name] if key.name in table else key.default,
                 "config" if key.name in table else "default", key.description)
                for key in BACKEND_KEYS if key.applies_to(str(table.get("kind")))
                and (key.name in table or key.default is not None)]
        found.append((name, keys))
    return found


_SOURCE_STYLES = {"default": "dim", "config": "cyan", "env": "magenta", "flag": "green"}
_GAP = "  "
_MIN_DESCRIPTION = 12  # narrower than this, the description column is left out


def _print_wide(console, rows) -> bool:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("setting", no_wrap=True, min_width=max(len(row[0]) for row in rows))
    table.add_column("value", overflow="fold")  # a long path folds onto more lines, whole
    table.add_column("from", overflow="fold", min_width=7)
    table.add_column("description")
    for name, shown, source, where, description in rows:
        table.add_row(name, Text(shown, style="dim" if source == "default" else "bold"),
                      Text(where, style=_SOURCE_STYLES[source]), description)
    console.print(table)
    return False


def _print_compact(console, rows) -> bool:
    """One line per setting in the terminal's width: a long value (a path) keeps its start and end, an
    environment variable reads `env` on a narrow terminal, and the description is cut to what is left.
    Returns whether anything was shortened."""
    from rich.text import Text

    width = console.width
    if width < 100:
        rows = [(name, shown, source, "env" if source == "env" else where, description)
                for name, shown, source, where, description in rows]
    name_w = max(len("setting"), *(len(row[0]) for row in rows))
    from_w = max(len("from"), *(len(row[3]) for row in rows))
    value_budget = max(20, min(width // 3, width - name_w - from_w - 3 * len(_GAP) - 2 * _MIN_DESCRIPTION))
    value_w = max(len("value"), *(min(len(row[1]), value_budget) for row in rows))
    description_w = width - name_w - value_w - from_w - 3 * len(_GAP)
    show_description = description_w >= _MIN_DESCRIPTION
    elided = not show_description
    header = _GAP.join(["setting".ljust(name_w), "value".ljust(value_w), "from".ljust(from_w)]
                       + (["description"] if show_description else []))
    console.print(Text(header.rstrip(), style="bold"), soft_wrap=True)
    for name, shown, source, where, description in rows:
        value = _output.elide_middle(shown, value_w)
        line = Text(name.ljust(name_w) + _GAP)
        line.append(value.ljust(value_w), style="dim" if source == "default" else "bold")
        line.append(_GAP)
        line.append(where.ljust(from_w), style=_SOURCE_STYLES[source])
        if show_description:
            cut = _output.elide_end(description, description_w)
            line.append(_GAP + cut)
            elided = elided or cut != description
        elided = elided or value != shown
        line.rstrip()
        console.print(line, soft_wrap=True)
    return elided


@config_app.command("get", cls=Command)
def get(key: KeyArg) -> None:
    """Print one setting's value in effect.

    Nothing when it is unset; auth_token prints the token in use.
    """
    from mlxclaude.config.load import load_settings
    from mlxclaude.config.registry import lookup
    from mlxclaude.config.token import resolve_auth_token

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
