"""Resolving settings from defaults, config.toml, MLXCLAUDE_* and flags; storing them with `config set`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from mlxclaude.config.registry import REGISTRY, SETTINGS, ServerSettings, Setting, Source, lookup, suggestion
from mlxclaude.config.toml import TABLES, default_config_path, read_config, write_config
from mlxclaude.errors import MlxClaudeError, UsageError


@dataclass(frozen=True)
class ResolvedSettings:
    settings: ServerSettings
    sources: dict[str, Source]
    config_path: Path

    def value(self, name: str) -> Any:
        return getattr(self.settings, name)


def load_settings(environ: Optional[Mapping[str, str]] = None, *, config_path: Optional[Path] = None,
                  overrides: Optional[Mapping[str, object]] = None) -> ResolvedSettings:
    """Resolve every setting and where its value came from.

    A malformed config.toml or an invalid value in it raises MlxClaudeError naming the file (and line or
    key); unknown keys in it warn on stderr. An invalid MLXCLAUDE_* value warns and is ignored. An invalid
    override raises UsageError.
    """
    environ = os.environ if environ is None else environ
    path = config_path if config_path is not None else default_config_path()
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {setting.name: "default" for setting in SETTINGS}

    for key, raw in read_config(path).items():
        setting = REGISTRY.get(key)
        if setting is None and key in TABLES:
            continue  # [backends], [routes], [fallbacks]: read where they are used, kept when written
        if setting is None:
            warn(f"{path}: unknown setting {key!r}{suggestion(key)}; ignored")
            continue
        try:
            values[key] = setting.coerce(raw)
        except ValueError as exc:
            raise MlxClaudeError(f"{path}: {key}: {exc}",
                                 hint=f"fix it with `mlxclaude config set {key} VALUE` or "
                                      f"`mlxclaude config unset {key}`") from None
        sources[key] = "config"

    for setting in SETTINGS:
        raw_env = environ.get(setting.env)
        if raw_env is None or raw_env == "":
            continue
        try:
            values[setting.name] = setting.coerce(raw_env)
        except ValueError as exc:
            warn(f"{setting.env}={raw_env!r} ignored: {exc}")
            continue
        sources[setting.name] = "env"

    for key, value in (overrides or {}).items():
        if value is None:
            continue
        setting = REGISTRY.get(key)
        if setting is None:
            raise TypeError(f"unknown setting {key!r}")
        try:
            values[key] = setting.coerce(value)
        except ValueError as exc:
            raise UsageError(f"{key}: {exc}") from None
        sources[key] = "flag"

    defaults = ServerSettings()
    return ResolvedSettings(replace(defaults, **values), sources, path)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --- config.toml ---------------------------------------------------------------------------------


def set_config_value(key: str, raw: object, path: Optional[Path] = None) -> tuple[Setting, Any]:
    """Validate, coerce and store one setting; a value meaning "unset" (e.g. `auto`) removes the key."""
    setting = lookup(key)
    try:
        value = setting.coerce(raw)
    except ValueError as exc:
        raise UsageError(f"{setting.name}: {exc}") from None
    current = read_config(path)
    if value is None:
        current.pop(setting.name, None)
    else:
        current[setting.name] = value
    write_config(current, path)
    return setting, value


def unset_config_value(key: str, path: Optional[Path] = None) -> tuple[Setting, bool]:
    """Remove one setting from config.toml; returns whether it was there."""
    setting = lookup(key)
    current = read_config(path)
    if setting.name not in current:
        return setting, False
    del current[setting.name]
    write_config(current, path)
    return setting, True


