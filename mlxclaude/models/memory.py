"""Memory arithmetic for `models check`: weights, KV cache per token, what context fits in free RAM."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

WEIGHTS_OVERHEAD = 1.1

_DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float64": 8}


def _first_int(config: dict, *keys: str) -> Optional[int]:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def kv_bytes_per_token(config: dict) -> Optional[int]:
    """KV-cache bytes one token costs: 2 (K and V) × layers × kv_heads × head_dim × bytes per element.

    Reads a Hugging Face / mlx-lm config.json, with a multimodal model's `text_config` taking
    precedence. num_key_value_heads defaults to the attention heads (no GQA); head_dim defaults to
    hidden_size / heads. Only full-attention layers count when `layer_types` or
    `sliding_window_pattern` mark the others as sliding-window (their cache is bounded).
    MLA models (`kv_lora_rank`, DeepSeek) cache one latent of kv_lora_rank + qk_rope_head_dim.
    The element size is the model's activation dtype (a quantized model's is 16-bit).
    None when the config doesn't say enough.
    """
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    merged = {**config, **text}
    layers = _first_int(merged, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    if layers is None:
        return None
    layer_types = merged.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        layers = sum(1 for kind in layer_types if "sliding" not in str(kind)) or 0
    else:
        pattern = _first_int(merged, "sliding_window_pattern")
        if pattern and pattern > 1 and merged.get("sliding_window"):
            layers = layers // pattern
    dtype = str(merged.get("torch_dtype") or merged.get("dtype") or "bfloat16").replace("torch.", "")
    element = 2 if "quantization" in config or "quantization_config" in config else _DTYPE_BYTES.get(dtype, 2)
    lora_rank = _first_int(merged, "kv_lora_rank")
    if lora_rank:
        return layers * (lora_rank + (_first_int(merged, "qk_rope_head_dim") or 0)) * element
    heads = _first_int(merged, "num_attention_heads", "n_head", "num_heads", "n_heads")
    kv_heads = _first_int(merged, "num_key_value_heads", "num_kv_heads", "n_kv_heads", "multi_query_group_num")
    kv_heads = kv_heads or heads
    head_dim = _first_int(merged, "head_dim")
    if head_dim is None:
        hidden = _first_int(merged, "hidden_size", "n_embd", "d_model", "dim")
        head_dim = hidden // heads if hidden and heads else None
    if not kv_heads or not head_dim:
        return None
    return 2 * layers * kv_heads * head_dim * element


def max_context_that_fits(*, model_context: int, available_bytes: int, weights_bytes: int,
                          kv_per_token: Optional[int]) -> int:
    """min(model context, (free − weights × 1.1) / KV bytes per token); 0 when the weights don't fit."""
    room = available_bytes - weights_bytes * WEIGHTS_OVERHEAD
    if room <= 0:
        return 0
    if not kv_per_token:
        return model_context
    return max(0, min(model_context, int(room // kv_per_token)))


def available_memory_bytes() -> Optional[int]:
    """Memory a new allocation can get now (Linux MemAvailable within any cgroup limit; macOS vm_stat)."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_available()
        if sys.platform == "darwin":
            return _macos_available()
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return None


def _linux_available() -> Optional[int]:
    available = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) * 1024
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit.isdigit():
            used = int((cgroup / "memory.current").read_text().strip())
            room = max(0, int(limit) - used)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def _macos_available() -> Optional[int]:
    try:
        out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5, check=True).stdout
        page = int(re.search(r"page size of (\d+) bytes", out).group(1))  # type: ignore[union-attr]
        pages = {m.group(1): int(m.group(2)) for m in re.finditer(r'^"?([^:"]+)"?:\s+(\d+)\.', out, re.M)}
        free = sum(pages.get(key, 0) for key in ("Pages free", "Pages inactive", "Pages speculative",
                                                   "Pages purgeable"))
        if free:
            return free * page
    except (AttributeError, subprocess.SubprocessError, OSError, ValueError):
        pass
    out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=5, check=True)
    return int(out.stdout.strip())  # total memory: the best we can say without vm_stat


def gpu_working_set_bytes() -> Optional[int]:
    """Metal's recommended working-set limit on Apple silicon (models must fit under it), else None."""
    if sys.platform != "darwin":
        return None
    try:
        import mlx.core as mx

        if not mx.metal.is_available():
            return None
        info = mx.device_info() if hasattr(mx, "device_info") else mx.metal.device_info()
        value = info.get("max_recommended_working_set_size")
        return int(value) if value else None
    except Exception:
        return None


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
