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
    from mlxclaude.claude.env import CLAUDE_HAIKU_ID, CLAUDE_OPUS_ID, CLAUDE_SONNET_ID
    from mlxclaude.daemon.routes import load_routing
    from mlxclaude.routing.config import DEFAULT_ROUTE
    from mlxclaude.routing.router import Router

    config = load_routing(local_model, document)
    if not config.configured:
        return TierChoice()
    router = Router(config)
    route = router.route(CLAUDE_HAIKU_ID)
    # Claude Code's banner names its own model: say what answers each tier instead
    answers = "; ".join(f"{tier} → {answering(config, router.route(model_id).backend)}"
                        for tier, model_id in (("opus", CLAUDE_OPUS_ID), ("sonnet", CLAUDE_SONNET_ID),
                                               ("haiku", CLAUDE_HAIKU_ID)))
    if route.pattern == DEFAULT_ROUTE:
        return TierChoice(True, None, "routes configured: Claude Code keeps its model ids; no haiku route, "
                                      f"so haiku calls take the {DEFAULT_ROUTE} route ({route.backend}). "
                                      f"What answers: {answers}")
    return TierChoice(True, CLAUDE_HAIKU_ID,
                      f"routes configured: Claude Code keeps its model ids; haiku → {route.backend}. "
                      f"What answers: {answers}")


def answering(config, backend: str) -> str:
    """`gpu (Qwen/Qwen3-Coder-480B)`: a backend and the model it runs, as config.toml names them."""
    spec = config.backends.get(backend)
    model = getattr(spec, "model", None) or getattr(spec, "deployment", None)
    return f"{backend} ({model})" if model else backend
