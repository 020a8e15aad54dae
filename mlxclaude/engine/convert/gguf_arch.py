"""Per-architecture knowledge for GGUF import: tensor names and config.json from GGUF metadata.

Pure Python (no mlx): the names llama.cpp writes (``blk.N.attn_q``) mapped back to the module
paths of the mlx-lm model class (``model.layers.N.self_attn.q_proj``), and the metadata keys
(``{arch}.block_count`` ...) mapped to the Hugging Face config fields mlx-lm reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

_LAYER = re.compile(r"^blk\.(\d+)\.(.+)$")

_COMMON_TOP = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_COMMON_LAYER = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_norm": "post_attention_layernorm",
}
_GEMMA3_LAYER = {
    **_COMMON_LAYER,
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}

# Tensors llama.cpp writes that the text model does not use (consumed into the config, or the
# vision tower some GGUFs, e.g. Ollama's gemma3, carry in the same file).
_DROPPED = re.compile(r"^(rope_freqs\.weight|v\..*|mm\..*|mmproj\..*)$")


class ConfigError(ValueError):
    """A metadata key the architecture needs is missing or malformed."""


@dataclass(frozen=True)
class Arch:
    gguf_name: str
    model_type: str
    layer_names: dict[str, str]
    permute_qk: bool  # llama.cpp permuted Q/K rows for GPT-J style rope (LLM_ARCH_LLAMA)
    norm_shift: float  # llama.cpp stored norm weights as (w + shift) (Gemma's 1 + w norms)
    build_config: Callable[["Meta", set[str], dict[str, tuple[int, ...]]], dict[str, Any]]

    def module_path(self, gguf_base: str) -> str | None:
        """mlx-lm module path for a GGUF tensor base name (without .weight/.bias), or None."""
        if gguf_base in _COMMON_TOP:
            return _COMMON_TOP[gguf_base]
        match = _LAYER.match(gguf_base)
        if match and match.group(2) in self.layer_names:
            return f"model.layers.{match.group(1)}.{self.layer_names[match.group(2)]}"
        return None


def is_dropped(gguf_name: str) -> bool:
    return bool(_DROPPED.match(gguf_name))


class Meta:
    """Typed access to ``{arch}.*`` metadata keys."""

    def __init__(self, arch: str, metadata: dict[str, Any]):
        self.arch = arch
        self.metadata = metadata

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.arch}.{key}", default)

    def int(self, key: str, default: int | None = None) -> int:
        value = self.get(key, default)
        if isinstance(value, list):  # per-layer values (e.g. head_count_kv); one value is required
            distinct = set(value)
            if len(distinct) != 1:
                raise ConfigError(f"{self.arch}.{key} differs between layers ({sorted(distinct)})")
            value = value[0]
        if value is None:
            raise ConfigError(f"the GGUF has no {self.arch}.{key} metadata")
        return int(value)

    def float(self, key: str, default: float | None = None) -> float:
        value = self.get(key, default)
        if value is None:
            raise ConfigError(f"the GGUF has no {self.arch}.{key} metadata")
        return float(value)


def _base_config(meta: Meta, names: set[str], shapes: dict[str, tuple[int, ...]], *, rope_default: float,
                 eps_default: float | None = None) -> dict[str, Any]:
    heads = meta.int("attention.head_count")
    hidden = meta.int("embedding_length")
    vocab = shapes["token_embd.weight"][0] if "token_embd.weight" in shapes else None
    if vocab is None:
        raise ConfigError("the GGUF has no token_embd.weight tensor")
    config: dict[str, Any] = {
        "hidden_size": hidden,
        "num_hidden_layers": meta.int("block_count"),
        "intermediate_size": meta.int("feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": meta.int("attention.head_count_kv", heads),
        "rms_norm_eps": meta.float("attention.layer_norm_rms_epsilon", eps_default),
        "rope_theta": meta.float("rope.freq_base", rope_default),
        "max_position_embeddings": meta.int("context_length", 4096),
        "vocab_size": int(vocab),
        "tie_word_embeddings": "output.weight" not in names,
    }
    key_length = meta.get("attention.key_length")
    config["head_dim"] = int(key_length) if key_length else hidden // heads
    scaling = _rope_scaling(meta)
    if scaling:
        config["rope_scaling"] = scaling
    return config


def _rope_scaling(meta: Meta) -> dict[str, Any] | None:
    kind = meta.get("rope.scaling.type")
    factor = meta.get("rope.scaling.factor")
    if not kind or kind == "none" or not factor or float(factor) == 1.0:
        return None
    scaling: dict[str, Any] = {"type": kind, "rope_type": kind, "factor": float(factor)}
    original = meta.get("rope.scaling.original_context_length")
    if original:
        scaling["original_max_position_embeddings"] = int(original)
    return scaling


def llama3_rope_scaling(freq_factors: list[float], head_dim: int, rope_theta: float) -> dict[str, Any] | None:
    """Recover Llama 3.x's ``rope_scaling`` from llama.cpp's ``rope_freqs`` tensor.

    llama.cpp stores the per-frequency divisors instead of the four parameters; ``factor`` is
    their maximum, and the others are found by trying the values Llama 3.x ships with.
    """
    if not freq_factors or max(freq_factors) <= 1.0:
        return None
    factor = max(freq_factors)
    dims = len(freq_factors) * 2
    inv_freqs = [1.0 / rope_theta ** (2 * i / dims) for i in range(len(freq_factors))]

    def predicted(low: float, high: float, original: int) -> list[float]:
        out = []
        for freq in inv_freqs:
            wavelen = 2 * math.pi / freq
            if wavelen < original / high:
                out.append(1.0)
            elif wavelen > original / low:
                out.append(factor)
            else:
                smooth = (original / wavelen - low) / (high - low)
                out.append(1 / ((1 - smooth) / factor + smooth))
        return out

    best, best_err = None, math.inf
    for original in (8192, 4096, 2048, 16384, 32768, 65536, 131072):
        for low in (1.0, 2.0, 0.5):
            for high in (4.0, 8.0, 2.0, 16.0):
                if high <= low:
                    continue
                err = max(abs(a - b) / b for a, b in zip(predicted(low, high, original), freq_factors))
                if err < best_err:
                    best, best_err = (low, high, original), err
    low, high, original = best if best and best_err < 1e-3 else (1.0, 4.0, 8192)
    return {
        "type": "llama3",
        "rope_type": "llama3",
        "factor": float(factor),
        "low_freq_factor": low,
        "high_freq_factor": high,
        "original_max_position_embeddings": original,
    }


def _llama_config(meta: Meta, names: set[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    config = _base_config(meta, names, shapes, rope_default=10000.0, eps_default=1e-5)
    config["attention_bias"] = any(n.endswith("attn_q.bias") for n in names)
    config["mlp_bias"] = any(n.endswith("ffn_up.bias") for n in names)
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **config}


def _qwen2_config(meta: Meta, names: set[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    config = _base_config(meta, names, shapes, rope_default=1_000_000.0, eps_default=1e-6)
    config.pop("head_dim")  # qwen2 derives it from hidden_size / heads
    return {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], **config}


def _qwen3_config(meta: Meta, names: set[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    config = _base_config(meta, names, shapes, rope_default=1_000_000.0, eps_default=1e-6)
    return {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], **config}


def _gemma3_config(meta: Meta, names: set[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    config = _base_config(meta, names, shapes, rope_default=1_000_000.0, eps_default=1e-6)
    config.pop("tie_word_embeddings")  # mlx-lm's gemma3_text ties whenever lm_head is absent
    layers = config["num_hidden_layers"]
    # llama.cpp: the 27B model (62 layers) scales queries by hidden/heads, the others by head_dim.
    scalar = config["hidden_size"] // config["num_attention_heads"] if layers == 62 else config["head_dim"]
    config.update(
        query_pre_attn_scalar=scalar,
        sliding_window=meta.int("attention.sliding_window", 512),
        sliding_window_pattern=6,  # llama.cpp hard-codes Gemma 3's 5 local : 1 global layers
        rope_local_base_freq=10000.0,
        hidden_activation="gelu_pytorch_tanh",
    )
    return {"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], **config}


ARCHES: dict[str, Arch] = {
    "llama": Arch("llama", "llama", _COMMON_LAYER, permute_qk=True, norm_shift=0.0, build_config=_llama_config),
    "qwen2": Arch("qwen2", "qwen2", _COMMON_LAYER, permute_qk=False, norm_shift=0.0, build_config=_qwen2_config),
    "qwen3": Arch("qwen3", "qwen3", _COMMON_LAYER, permute_qk=False, norm_shift=0.0, build_config=_qwen3_config),
    "gemma3": Arch("gemma3", "gemma3_text", _GEMMA3_LAYER, permute_qk=False, norm_shift=1.0,
                   build_config=_gemma3_config),
}


def supported_architectures() -> list[str]:
    return sorted(ARCHES)
