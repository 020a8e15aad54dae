"""Offline builder of a tiny random-weight Qwen2-VL model that mlx-vlm loads, from the tiny text model.

* the text model's tokenizer plus Qwen2-VL's vision tokens (``<|vision_start|>``, ``<|vision_end|>``,
  ``<|image_pad|>``, ``<|video_pad|>``) as special tokens;
* its chat template, which renders an image part as ``<|vision_start|><|image_pad|><|vision_end|>``;
* ``preprocessor_config.json``: a real ``Qwen2VLImageProcessor`` configuration (14-pixel patches merged 2x2)
  with a small pixel budget, so an image is a few dozen tokens;
* ``config.json``: mlx-vlm's ``qwen2_vl`` with mRoPE; the language model's weights are the tiny text model's
  (calibrated to stop, see tiny_model.py), the vision tower's are seeded random.

Says nothing about quality: it serves paths, caching and ratios.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tiny_model import _dist_version, build_once, default_cache_root, ensure_tiny_model

TINY_VLM_VERSION = 1
VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
IMAGE_PART = "<|vision_start|><|image_pad|><|vision_end|>"
MAX_PIXELS = 112 * 112  # at most 64 patches: 16 image tokens


def _with_image_parts(template: str) -> str:
    text_part = "            {%- elif part.text is defined and part.text is not none -%}\n"
    assert text_part in template
    image_part = ("            {%- elif part.type is defined and part.type == 'image' -%}\n"
                  f"                {{{{- '{IMAGE_PART}' }}}}\n")
    return template.replace(text_part, image_part + text_part, 1)


def build_tiny_vlm(out_dir: Path, *, seed: int = 0) -> Path:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_vlm.models import qwen2_vl
    from tokenizers import AddedToken, Tokenizer

    source = ensure_tiny_model()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in VISION_TOKENS])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in VISION_TOKENS}

    tokenizer_config = json.loads((source / "tokenizer_config.json").read_text())
    tokenizer_config["added_tokens_decoder"].update({
        str(ids[token]): {"content": token, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": True}
        for token in VISION_TOKENS})
    tokenizer_config["processor_class"] = "Qwen2VLProcessor"
    tokenizer_config["chat_template"] = _with_image_parts(tokenizer_config["chat_template"])
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    for name in ("special_tokens_map.json", "generation_config.json"):
        shutil.copy(source / name, out_dir / name)

    text = json.loads((source / "config.json").read_text())
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    config = {**text, "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
              "vocab_size": tokenizer.get_vocab_size(),
              "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
              "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
              "rope_scaling": {"type": "mrope", "mrope_section": [head_dim // 2 - 2 * (head_dim // 8),
                                                                  head_dim // 8, head_dim // 8]},
              "vision_config": {"model_type": "qwen2_vl", "depth": 1, "embed_dim": 32,
                                "hidden_size": text["hidden_size"], "num_heads": 2, "mlp_ratio": 2, "in_channels": 3,
                                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor",
        "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True, "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": 56 * 56, "max_pixels": MAX_PIXELS, "patch_size": 14, "merge_size": 2,
        "temporal_patch_size": 2}, indent=2))

    mx.random.seed(seed)
    model_config = qwen2_vl.ModelConfig.from_dict(json.loads(json.dumps(config)))
    model_config.text_config = qwen2_vl.TextConfig.from_dict(config)
    model_config.vision_config = qwen2_vl.VisionConfig.from_dict(config["vision_config"])
    weights = dict(tree_flatten(qwen2_vl.Model(model_config).parameters()))
    for key, value in mx.load(str(source / "model.safetensors")).items():
        name = f"language_model.{key}"
        if key.endswith("embed_tokens.weight"):  # the vision tokens' rows stay random
            value = mx.concatenate([value, weights[name][value.shape[0]:]], axis=0)
        assert weights[name].shape == value.shape, name
        weights[name] = value
    mx.save_safetensors(str(out_dir / "model.safetensors"), weights, metadata={"format": "mlx"})
    return out_dir


def ensure_tiny_vlm(cache_root: Path | None = None) -> Path:
    """A cached build (renamed into place, so concurrent callers are safe)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    blob = json.dumps({"v": TINY_VLM_VERSION, "text": ensure_tiny_model().name,
                       "mlx_vlm": _dist_version("mlx-vlm")}, sort_keys=True)
    target = root / f"tiny-vlm-v{TINY_VLM_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
    return build_once(target, build_tiny_vlm)
