"""What MLX runs on here (doctor) and what its allocator holds (Backend.memory_facts, the prompt cache's budget)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from mlxclaude.engine.backend import DeviceMemory


@dataclass(frozen=True)
class DeviceFacts:
    backend: str  # "Metal", "CUDA", "GPU" or "CPU"
    device: str  # MLX's default device, e.g. "Device(gpu, 0)"
    memory_bytes: Optional[int] = None  # a discrete GPU's own memory (CUDA); None: the machine's RAM is what counts


def device_facts() -> DeviceFacts:
    """The installed MLX's backend and default device; ImportError when mlx cannot be imported."""
    import mlx.core as mx

    device = str(mx.default_device())
    if "gpu" not in device.lower():
        return DeviceFacts("CPU", device)
    if _safe(lambda: mx.metal.is_available()):
        return DeviceFacts("Metal", device)
    backend = "CUDA" if _safe(lambda: mx.cuda.is_available()) else "GPU"
    return DeviceFacts(backend, device, _gpu_memory(mx))


def _gpu_memory(mx: Any) -> Optional[int]:
    info = _safe(lambda: mx.device_info()) or {}
    value = info.get("total_memory") or info.get("memory_size")
    return int(value) if isinstance(value, int) and value > 0 else None


def device_memory() -> DeviceMemory:
    """MLX's allocator figures; each None where the installed mlx has no such counter."""
    import mlx.core as mx

    def counter(name: str) -> Optional[int]:
        value = _safe(lambda: getattr(mx, name)())
        return int(value) if value is not None else None

    return DeviceMemory(active_bytes=counter("get_active_memory"), peak_bytes=counter("get_peak_memory"),
                        cache_bytes=counter("get_cache_memory"), limit_bytes=_metal_working_set(mx))


def _metal_working_set(mx: Any) -> Optional[int]:
    """Metal's recommended working-set size (what weights and KV cache must fit under); None without Metal."""
    if not _safe(lambda: mx.metal.is_available()):
        return None
    info = _safe(lambda: mx.device_info() if hasattr(mx, "device_info") else mx.metal.device_info()) or {}
    value = info.get("max_recommended_working_set_size")
    return int(value) if value else None


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:  # an older mlx, or a backend without the call
        return None
