"""The token between Claude Code and the daemon: the configured one, else one generated once per user."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mlxclaude import paths
from mlxclaude.atomic import atomic_write_text

if TYPE_CHECKING:
    from mlxclaude.config.registry import ServerSettings


def token_file() -> Path:
    return paths.config_dir() / "auth_token"


def local_token(path: Optional[Path] = None) -> str:
    """The token generated once for this user (created 0600 on first use) and reused across restarts."""
    path = path if path is not None else token_file()
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = f"mlxc-{secrets.token_urlsafe(24)}"
    atomic_write_text(path, token + "\n", mode=0o600)
    return token


def resolve_auth_token(settings: "ServerSettings") -> str:
    """The token the daemon requires and Claude Code sends: the configured one, else `local_token()`."""
    return settings.auth_token or local_token()
