"""How many bytes the prompt cache may hold when `cache_max_bytes` is not set."""

from __future__ import annotations

import os
import sys
from typing import Optional

DEFAULT_SHARE = 0.25
FALLBACK_BYTES = 2 * 1024**3


def available_memory_bytes() -> Optional[int]:
    """Memory a new allocation could get now: MemAvailable on Linux; on macOS the Metal working set
    (or physical memory) less what MLX already holds (the weights). None when it cannot be told."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    total = _metal_working_set() or _physical_memory()
    if total is None:
        return None
    return max(0, total - _mlx_active_memory())


def _metal_working_set() -> Optional[int]:
    try:
        import mlx.core as mx

        value = mx.device_info().get("max_recommended_working_set_size")
        return int(value) if value else None
    except Exception:
        return None


def _physical_memory() -> Optional[int]:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _mlx_active_memory() -> int:
    try:
        import mlx.core as mx

        return int(mx.get_active_memory())
    except Exception:
        return 0


def default_max_bytes(share: float = DEFAULT_SHARE) -> int:
    available = available_memory_bytes()
    return int(available * share) if available else FALLBACK_BYTES
