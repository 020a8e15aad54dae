"""What Claude Code needs to reach the daemon (URL, token, model id, context), for `run` and `settings wire`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from mlxclaude.cli import _output
from mlxclaude.errors import MlxClaudeError

HEALTH_TIMEOUT = 5.0


def fetch_health(url: str, timeout: float = HEALTH_TIMEOUT) -> Optional[dict[str, Any]]:
    """The daemon's /health JSON when it is up and ready; None otherwise."""
    from mlxclaude.daemon.client import health

    body = health(url.rstrip("/"), timeout=timeout)
    return body if body is not None and body.get("status") == "ok" else None


def daemon_endpoint(settings: Any) -> tuple[str, Optional[str]]:
    """(URL, token) of the running daemon, which may have been started on another port than the
    configured one; the configured ones when none runs."""
    from mlxclaude.daemon.state import read_state, url_for

    state = read_state()
    if state is not None:
        return state.url, state.token or auth_token(settings)
    return url_for(settings.host, settings.port), auth_token(settings)


def auth_token(settings: Any) -> Optional[str]:
    """The token the daemon requires: configured, else the generated per-user one."""
    from mlxclaude.config.token import resolve_auth_token

    return resolve_auth_token(settings)


def served_model(health: Optional[dict[str, Any]], model_name: Optional[str], context_limit: Optional[int], *,
                 keep_tiers: bool) -> tuple[Optional[str], Optional[int]]:
    """The model id Claude Code is given and the context, from the daemon's /health, else the configuration.
    None for the id when the routes keep Claude Code's own ids and there is no local model to name."""
    model_id = health.get("model_id") if health else None
    context = (health.get("context_length") if health else None) or context_limit
    if model_id is None and (model_name or not keep_tiers):
        model_id = fallback_model_id(model_name)
    return model_id, context


def fallback_model_id(name: Optional[str]) -> str:
    """The model id Claude Code is given when the daemon cannot say: from the configured name or directory."""
    from mlxclaude.claude import local_model_id

    if not name:
        raise MlxClaudeError("the daemon did not report its model", hint="mlxclaude status")
    path = Path(name).expanduser()
    return local_model_id(path.name if path.is_dir() or name.startswith(("/", ".", "~")) else name)


def warn_small_context(context: Optional[int]) -> None:
    from mlxclaude.claude.env import context_warning

    warning = context_warning(context)
    if warning:
        _output.warning(warning)
