"""doctor's check of config.toml's [web_search]: the table parses and its provider answers a search."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional

from mlxclaude import paths
from mlxclaude.doctor import Check
from mlxclaude.errors import MlxClaudeError


def check_web_search(document: Optional[Mapping[str, Any]] = None) -> Check:
    from mlxclaude.websearch.config import SETUP_HINT, parse_web_search
    from mlxclaude.websearch.providers import SearchFailed, search

    if document is None:
        from mlxclaude.config.toml import read_config

        document = read_config()
    try:
        config = parse_web_search(document)
    except MlxClaudeError as exc:
        return Check("web search", "fail", exc.message, exc.hint or f"fix [web_search] in {paths.config_file()}")
    if config is None:
        return Check("web search", "warn", "not configured: Claude Code's WebSearch gets a reply saying so",
                     SETUP_HINT)
    try:
        hits = asyncio.run(search(config, "mlxclaude"))
    except SearchFailed as failure:
        return Check("web search", "fail", f"{config.provider} at {config.url}: {failure.code} ({failure})",
                     f"check that {config.url} is up and answers searches"
                     + (f", and ${config.api_key_env}" if config.api_key_env else ""))
    return Check("web search", "ok", f"{config.provider} at {config.url}: a test search found {len(hits)} results")
