"""Memory arithmetic for `models check`: KV cache per token, what context fits in free memory (the facts
themselves come from engine/memory.py and the backend)."""

from __future__ import annotations

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


def weights_bytes(path: Path) -> int:
    """The bytes of a model directory's weight files."""
    return sum(file.stat().st_size for file in Path(path).glob("*.safetensors"))


def weights_fit(weights: int, available: Optional[int]) -> bool:
    """Whether weights of this size can load into `available` bytes (unknown: assumed to fit)."""
    return available is None or weights * WEIGHTS_OVERHEAD < available
