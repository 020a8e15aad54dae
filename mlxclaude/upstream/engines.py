"""The remote engine for a backend's kind."""

from __future__ import annotations

from mlxclaude.routing.config import BackendSpec
from mlxclaude.upstream.remote_engine import RemoteEngine


def make_engine(spec: BackendSpec) -> RemoteEngine:
    if spec.kind == "anthropic":
        from mlxclaude.upstream.anthropic import AnthropicEngine

        return AnthropicEngine(spec)
    if spec.kind in ("openai", "azure"):
        from mlxclaude.upstream.openai import OpenAIEngine

        return OpenAIEngine(spec)
    raise ValueError(f"{spec.name}: kind {spec.kind!r} is not a remote engine")
