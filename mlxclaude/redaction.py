"""Secrets that must never leave the process: the values of every configured `api_key_env`. Registered when
read; `redact` replaces them with *** in whatever is logged or answered (upstreams often echo a wrong key
in their 401 text)."""

from __future__ import annotations

import json
import threading
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; no real API key is that short

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    global _secrets
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, json.dumps(value)[1:-1]}  # as written, and as it reads inside a JSON string
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_bytes(data: bytes) -> bytes:
    """`data` (UTF-8) with every secret masked; the same bytes, untouched, while no secret is registered."""
    if not _secrets:
        return data
    return redact(data.decode("utf-8", "replace")).encode()


def redact_value(value: Any) -> Any:
    """`value` (JSON-like: strings, lists, dicts) with every secret masked in its strings and keys."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


def forget_secrets() -> None:
    """Tests: start from none."""
    global _secrets
    with _lock:
        _secrets = ()
