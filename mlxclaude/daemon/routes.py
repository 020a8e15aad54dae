"""The one loader of config.toml's routing tables ([backends], [routes], [fallbacks]), for the daemon, the
CLI and doctor alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:
    from mlxclaude.routing.config import RoutingConfig


def load_routing(local_model: Optional[str], document: Optional[Mapping[str, Any]] = None) -> "RoutingConfig":
    """The routing of config.toml (`document`: its parsed text, read here when None), `local` being
    `local_model`; raises UsageError for a bad table."""
    from mlxclaude.routing.config import parse_routing

    if document is None:
        from mlxclaude.config.toml import read_config

        document = read_config()
    return parse_routing(document, local_model=local_model)


def needs_local_model(local_model: Optional[str]) -> bool:
    """Whether the routes need the top-level model (False: every route goes to another backend)."""
    return bool(local_model) or load_routing(local_model).uses_local
