"""Typed settings for the server. Precedence: defaults < MLXCLAUDE_* environment < explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Literal, Optional

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ServerSettings:
    model: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8765
    auth_token: Optional[str] = None
    context_limit: Optional[int] = None
    max_output_tokens: Optional[int] = None
    max_tokens_policy: Literal["clamp", "error"] = "clamp"
    ping_interval: float = 10.0
    max_queue: int = 16
    prefill_step_size: int = 2048

    @classmethod
    def from_env(cls, environ: Optional[dict[str, str]] = None, **overrides: object) -> "ServerSettings":
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = environ.get(f"MLXCLAUDE_{spec.name.upper()}")
            if raw is None or raw == "":
                continue
            values[spec.name] = _coerce(spec.type, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return replace(cls(), **values)

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")


def _coerce(type_name: object, raw: str) -> object:
    text = str(type_name)
    if "int" in text:
        return int(raw.replace("_", ""))
    if "float" in text:
        return float(raw)
    return raw
