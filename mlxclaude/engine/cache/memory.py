"""How many bytes the prompt cache may hold when `cache_max_bytes` is not set."""

from __future__ import annotations

from typing import Optional

from mlxclaude.engine.device import device_memory
from mlxclaude.engine.memory import memory_facts

DEFAULT_SHARE = 0.25
FALLBACK_BYTES = 2 * 1024**3


def room_for_cache() -> Optional[int]:
    """What the cache could still take: with Metal, its working set less what MLX already holds (the
    weights); elsewhere the memory available now. None when it cannot be told."""
    device = device_memory()
    if device.limit_bytes:
        return max(0, device.limit_bytes - (device.active_bytes or 0))
    return memory_facts().available_bytes


def default_max_bytes(share: float = DEFAULT_SHARE) -> int:
    room = room_for_cache()
    return int(room * share) if room else FALLBACK_BYTES
