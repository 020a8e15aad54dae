"""config.toml's [web_search] table, checked into a WebSearchConfig. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from mlxclaude.errors import UsageError

PROVIDERS = ("searxng", "brave", "tavily")
DEFAULT_URLS = {"brave": "https://api.search.brave.com", "tavily": "https://api.tavily.com"}
KEYS = ("provider", "url", "api_key_env", "max_results", "timeout")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SETUP_HINT = ('add to config.toml:  [web_search]  provider = "searxng"  url = "http://127.0.0.1:8888"  '
              '(or provider = "brave" / "tavily" with api_key_env = "…"), then `mlxclaude restart`')


@dataclass(frozen=True)
class WebSearchConfig:
    provider: str
    url: str
    api_key_env: Optional[str] = None
    max_results: int = 5
    timeout_s: float = 15.0


def parse_web_search(document: Mapping[str, Any]) -> Optional[WebSearchConfig]:
    """The [web_search] table, or None when config.toml has none; raises UsageError naming the key."""
    table = document.get("web_search")
    if table is None:
        return None
    where = "[web_search]"
    if not isinstance(table, Mapping):
        raise UsageError(f"{where} must be a table", hint=SETUP_HINT)
    for key in table:
        if key not in KEYS:
            raise UsageError(f"{where}: unknown key {key!r}", hint=f"it takes: {', '.join(KEYS)}")
    provider = table.get("provider")
    if provider not in PROVIDERS:
        raise UsageError(f"{where}: provider must be one of {', '.join(PROVIDERS)}, got {provider!r}",
                         hint=SETUP_HINT)
    url = table.get("url") or DEFAULT_URLS.get(provider)
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]", url):
        raise UsageError(f"{where}: url must start with http:// or https://, got {url!r}",
                         hint='e.g. url = "http://127.0.0.1:8888" (SearXNG)')
    api_key_env = table.get("api_key_env")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not _ENV_NAME.fullmatch(api_key_env)):
        raise UsageError(f"{where}: api_key_env must be the NAME of an environment variable, not the key",
                         hint='export the key and write api_key_env = "BRAVE_API_KEY"')
    if provider in ("brave", "tavily") and api_key_env is None:
        raise UsageError(f"{where}: provider {provider!r} needs api_key_env", hint='e.g. api_key_env = "BRAVE_API_KEY"')
    max_results = table.get("max_results", 5)
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 20:
        raise UsageError(f"{where}: max_results must be a whole number from 1 to 20, got {max_results!r}",
                         hint="e.g. max_results = 5")
    timeout = table.get("timeout", 15)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(f"{where}: timeout must be a number of seconds, got {timeout!r}", hint="e.g. timeout = 15")
    return WebSearchConfig(provider=provider, url=url.rstrip("/"), api_key_env=api_key_env,
                           max_results=max_results, timeout_s=float(timeout))
