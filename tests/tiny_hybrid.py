"""Offline builder of a tiny random-weight hybrid model: mlx-lm's `qwen3_5` text model (Qwen3.5/3.6's layout:
gated-delta linear-attention layers, a full-attention layer every second one), with the tiny text model's
tokenizer and chat template. Seed 1 writes runs of repeats broken by other tokens, so prompt lookup's drafts
are accepted in part. Its linear-attention layers keep an ArraysCache, which cannot be cut back: what
speculation snapshots and restores. Says nothing about quality."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tiny_model import _dist_version, build_once, default_cache_root, ensure_tiny_model

TINY_HYBRID_VERSION = 2


def build_tiny_hybrid(out_dir: Path, *, seed: int = 1) -> Path:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import qwen3_5

    source = ensure_tiny_model()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        shutil.copy(source / name, out_dir / name)
    text = json.loads((source / "config.json").read_text())
    config = {"model_type": "qwen3_5", "architectures": ["Qwen3_5ForCausalLM"], "vocab_size": text["vocab_size"],
              "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 16, "linear_num_value_heads": 4, "linear_num_key_heads": 2,
              "linear_key_head_dim": 16, "linear_value_head_dim": 16, "linear_conv_kernel_dim": 4,
              "full_attention_interval": 2, "tie_word_embeddings": True, "max_position_embeddings": 32768,
              "rms_norm_eps": 1e-6, "eos_token_id": text.get("eos_token_id"),
              "rope_parameters": {"type": "default", "rope_theta": 10000, "partial_rotary_factor": 0.5,
                                  "mrope_section": [2, 1, 1]}}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    mx.random.seed(seed)
    model = qwen3_5.Model(qwen3_5.ModelArgs.from_dict(json.loads(json.dumps(config))))
    mx.save_safetensors(str(out_dir / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "mlx"})
    return out_dir


def ensure_tiny_hybrid(cache_root: Path | None = None) -> Path:
    """A cached build (renamed into place, so concurrent callers are safe)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    blob = json.dumps({"v": TINY_HYBRID_VERSION, "text": ensure_tiny_model().name, "mlx_lm": _dist_version("mlx-lm")},
                      sort_keys=True)
    target = root / f"tiny-hybrid-v{TINY_HYBRID_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
    return build_once(target, build_tiny_hybrid)
