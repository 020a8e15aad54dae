"""What `run` and `settings wire` tell Claude Code about models when config.toml routes requests.

With no routes every tier points at the one local model. With [routes] or [backends], Claude Code keeps its
own ids (claude-opus-…, claude-sonnet-…) for the daemon's routes to match; the haiku tier is set to an id the
haiku route catches, or left alone when there is no such route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class TierChoice:
    keep_tiers: bool = False           # routes configured: Claude Code keeps its own model ids
    haiku_model: Optional[str] = None  # the id set for the haiku tier (None: left unset)
    note: Optional[str] = None         # the one line to print about it


def tier_choice(local_model: Optional[str], document: Optional[dict] = None) -> TierChoice:
    """From config.toml (`document`: read_config()'s, read here when None); raises UsageError for bad routes."""
    from mlxclaude.claude.env import CLAUDE_HAIKU_ID
    from mlxclaude.daemon.routes import load_routing
    from mlxclaude.routing.config import DEFAULT_ROUTE
    from mlxclaude.routing.router import Router

    config = load_routing(local_model, document)
    if not config.configured:
        return TierChoice()
    route = Router(config).route(CLAUDE_HAIKU_ID)
    if route.pattern == DEFAULT_ROUTE:
        return TierChoice(True, None, "routes configured: Claude Code keeps its model ids; no haiku route, "
                                      f"so haiku calls take the {DEFAULT_ROUTE} route ({route.backend})")
    return TierChoice(True, CLAUDE_HAIKU_ID,
                      f"routes configured: Claude Code keeps its model ids; haiku → {route.backend}")
