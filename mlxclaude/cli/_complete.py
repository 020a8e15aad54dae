"""TAB completion of values (the shell scripts in completions/ call back into Typer, which calls these): model
names for `--model` and `models rm|check`, setting names for `config get|set|unset`. Each stays quiet on error:
a completion never prints a traceback into the user's command line."""

from __future__ import annotations


def model_names(incomplete: str) -> list[str]:
    try:
        from mlxclaude.models.catalog import list_models

        names = [model.name for model in list_models()]
    except Exception:
        return []
    return [name for name in names if name.startswith(incomplete)]


def setting_names(incomplete: str) -> list[str]:
    from mlxclaude.config.registry import SETTINGS

    return [setting.name for setting in SETTINGS if setting.name.startswith(incomplete.replace("-", "_"))]
