"""GGUF file (Ollama, LM Studio) → mlx-lm model directory.

mlx reads GGUF itself (``mx.load(path, return_metadata=True)``): Q4_0 / Q4_1 / Q8_0 tensors come
back as mlx affine-quantized triples (``weight``/``scales``/``biases``, group size 32), the K-quants
and the rest as float16/float32.  This module renames the tensors to the mlx-lm model's names,
undoes llama.cpp's layout changes (Q/K row permutation for llama, +1 on Gemma norms), writes
config.json from the metadata and the tokenizer files (``gguf_tokenizer``), and saves with mlx-lm's
own helpers, so ``mlx_lm.load(dir)`` works. The front-end (naming, the imported-models directory)
is mlxclaude.models.gguf_import.

Output weights:

* ``quantize=None``: dequantized to ``dtype`` (float32 by default; on CPU float32 decodes fastest).
* ``quantize=4`` / ``8`` (or 2, 3, 5, 6): GGUF blocks that already have that many bits are kept
  as they are (lossless, group 32); the rest is quantized by ``mlx_lm.utils.quantize_model``
  (affine, ``group_size`` 64 by default) from float32.
* ``quantize="gguf"``: the file's own Q4_0/Q4_1/Q8_0 blocks kept as they are (lossless, group 32);
  other tensors in ``dtype``.
"""


from __future__ import annotations

import contextlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from mlxclaude.errors import MlxClaudeError, UsageError
from mlxclaude.engine.convert.gguf_arch import (
    ARCHES,
    ConfigError,
    Meta,
    is_dropped,
    llama3_rope_scaling,
    supported_architectures,
)

GGUF_MAGIC = b"GGUF"
GGUF_BLOCK = 32  # group size of the Q4_0 / Q4_1 / Q8_0 blocks mlx loads quantized
DTYPES = ("float32", "float16", "bfloat16")
QUANT_BITS = (2, 3, 4, 5, 6, 8)
KEEP = "gguf"


class GgufImportError(MlxClaudeError):
    """A GGUF file that cannot be imported (not GGUF, unsupported architecture, bad metadata...)."""


Progress = Callable[[str], None]


def write_gguf_model(
    path: Path | str,
    out_dir: Path | str,
    *,
    quantize: int | str | None = None,
    dtype: str = "float32",
    group_size: int = 64,
    progress: Progress | None = None,
    loaded: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the mlx-lm model directory for the GGUF ``path`` into ``out_dir``; return its config.

    The building block of mlxclaude.models.gguf_import.import_gguf (which adds naming, the models dir,
    the import record and atomic replacement); tests use it to build into a cache directory of their own.
    """
    path, out_dir = Path(path).expanduser(), Path(out_dir)
    say = progress or (lambda _msg: None)
    quantize = check_options(quantize, dtype, group_size)
    if loaded is None:
        check_gguf_file(path)
        say(f"reading {path.name}")
        loaded = read_gguf(path)
    weights, metadata = loaded
    arch = architecture_of(metadata, path)
    say(f"converting {arch.gguf_name} weights")
    config, tensors = convert(arch, weights, metadata)
    del weights, loaded
    out_dir.mkdir(parents=True, exist_ok=True)
    from mlxclaude.engine.convert.gguf_tokenizer import write_tokenizer_files

    say("writing tokenizer")  # first: it is quick, and fails early on a vocabulary we cannot rebuild
    write_tokenizer_files(metadata, out_dir, arch=arch.gguf_name, context_length=config.get("max_position_embeddings"))
    return write_model(out_dir, arch, config, tensors, quantize=quantize, dtype=dtype, group_size=group_size, say=say)


# --- checks ----------------------------------------------------------------------------------


def check_options(quantize: int | str | None, dtype: str, group_size: int) -> int | str | None:
    """The validated ``quantize`` (a CLI may pass "4")."""
    if isinstance(quantize, str) and quantize.isdigit():
        quantize = int(quantize)
    if quantize is not None and quantize != KEEP and quantize not in QUANT_BITS:
        raise UsageError(f"cannot quantize to {quantize!r} bits",
                         hint="use --quantize 4 or 8, or leave it out for full-precision weights")
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}")
    if group_size not in (32, 64, 128):
        raise UsageError(f"unsupported quantization group size {group_size}", hint="use 32, 64 or 128")
    return quantize


def check_gguf_file(path: Path) -> None:
    if path.is_dir():
        raise GgufImportError(f"{path} is a directory, not a GGUF file",
                              hint="to import a Hugging Face safetensors directory, pass the directory "
                                   "(it is converted with mlx-lm); for GGUF, pass the .gguf file itself")
    if not path.is_file():
        raise GgufImportError(f"no such file: {path}", hint="check the path; Ollama keeps GGUF blobs in "
                                                           "~/.ollama/models/blobs, LM Studio in ~/.lmstudio/models")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise GgufImportError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')",
                              hint="pass a .gguf model file (llama.cpp / Ollama / LM Studio format)")


# --- reading -------------------------------------------------------------------------------------


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, plain-Python metadata) of a GGUF file."""
    import mlx.core as mx

    from mlxclaude.engine.convert.gguf_tokenizer import plain_metadata

    try:
        weights, metadata = mx.load(str(path), return_metadata=True)
    except Exception as exc:  # mlx raises RuntimeError/ValueError with the C++ message
        raise GgufImportError(f"mlx could not read {path.name}: {exc}",
                              hint="the file may be truncated or use a GGUF feature mlx does not support; "
                                   "re-download it or import the original Hugging Face model") from exc
    return weights, plain_metadata(metadata)


def architecture_of(metadata: dict[str, Any], path: Path) -> Any:
    arch = metadata.get("general.architecture")
    if arch not in ARCHES:
        raise GgufImportError(
            f"{path.name}: unsupported GGUF architecture {arch!r} "
            f"(supported: {', '.join(supported_architectures())})",
            hint="import the original Hugging Face safetensors directory instead (mlx-lm converts many more "
                 "architectures), or pull an MLX build of the model",
        )
    return ARCHES[arch]


# --- converting ----------------------------------------------------------------------------------


def _split_name(gguf_name: str) -> tuple[str, str]:
    base, _, suffix = gguf_name.rpartition(".")
    return base, suffix


def convert(arch: Any, weights: dict[str, Any], metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """(config.json dict, {module path: {"weight"|"bias"|"scales"|"biases": array}}) in mlx-lm names."""
    import mlx.core as mx

    names = set(weights)
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    meta = Meta(arch.gguf_name, metadata)
    try:
        config = arch.build_config(meta, names, shapes)
    except ConfigError as exc:
        raise GgufImportError(f"cannot build config.json: {exc}",
                              hint="the GGUF metadata is incomplete; re-convert it with a recent llama.cpp") from exc
    if arch.gguf_name == "llama" and "rope_freqs.weight" in weights and "rope_scaling" not in config:
        factors = weights["rope_freqs.weight"].astype(mx.float32).tolist()
        scaling = llama3_rope_scaling(factors, config["head_dim"], config["rope_theta"])
        if scaling:
            config["rope_scaling"] = scaling
    for key in ("bos_token_id", "eos_token_id"):
        if isinstance(metadata.get(f"tokenizer.ggml.{key}"), int):
            config[key] = metadata[f"tokenizer.ggml.{key}"]

    tensors: dict[str, dict[str, Any]] = {}
    unknown = []
    for gguf_name, array in weights.items():
        if is_dropped(gguf_name):
            continue
        base, suffix = _split_name(gguf_name)
        module = arch.module_path(base)
        if module is None or suffix not in ("weight", "bias", "scales", "biases"):
            unknown.append(gguf_name)
            continue
        tensors.setdefault(module, {})[suffix] = array
    if unknown:
        shown = ", ".join(sorted(unknown)[:5]) + (" ..." if len(unknown) > 5 else "")
        raise GgufImportError(
            f"{len(unknown)} tensor(s) in this {arch.gguf_name} GGUF have no mlx-lm counterpart: {shown}",
            hint="this variant of the architecture is not supported yet; import the original Hugging Face model",
        )
    if arch.permute_qk:
        heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
        for module, parts in tensors.items():
            if module.endswith("self_attn.q_proj"):
                tensors[module] = {k: unpermute_rows(v, heads) for k, v in parts.items()}
            elif module.endswith("self_attn.k_proj"):
                tensors[module] = {k: unpermute_rows(v, kv_heads) for k, v in parts.items()}
    if arch.norm_shift:
        for module, parts in tensors.items():
            if module.rsplit(".", 1)[-1].endswith("norm") and "weight" in parts:
                parts["weight"] = parts["weight"].astype(mx.float32) - arch.norm_shift
    return config, tensors


def unpermute_rows(array: Any, n_head: int) -> Any:
    """Undo llama.cpp's Q/K permutation (inverse of ``mlx_lm.gguf.permute_weights``).

    llama.cpp interleaves the two rope halves of every head's rows; rows are output features, so
    the same row permutation applies to a weight, its bias, and a quantized weight's scales/biases.
    """
    rows = array.shape[0]
    rest = tuple(array.shape[1:])
    return array.reshape(n_head, rows // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def _bits_of(parts: dict[str, Any]) -> int:
    return parts["weight"].shape[-1] // parts["scales"].shape[-1]


def dequantize_f32(parts: dict[str, Any], group_size: int) -> Any:
    """``q * scale + bias`` computed in float32, as llama.cpp does.

    ``mx.dequantize`` would round the result to the float16 of the scales, and on CPU it is about
    three times slower than these few vector ops.
    """
    import mlx.core as mx

    packed, scales, biases = parts["weight"], parts["scales"], parts["biases"]
    bits = _bits_of(parts)
    shifts = mx.arange(0, 32, bits, dtype=mx.uint32)
    q = (packed[..., None] >> shifts) & ((1 << bits) - 1)  # little-endian fields of each uint32
    rows = packed.shape[0]
    q = q.reshape(rows, -1, group_size).astype(mx.float32)
    values = q * scales[..., None].astype(mx.float32) + biases[..., None].astype(mx.float32)
    return values.reshape(rows, -1)


def materialize(tensors: dict[str, dict], dtype: Any, keep_bits: Callable[[int], bool]) -> tuple[dict, dict]:
    """(flat weights, {module: quantization params} of the GGUF blocks kept as they are).

    A quantized GGUF tensor whose bit width ``keep_bits`` accepts stays packed (its scales and
    biases cast to ``dtype``); every other tensor becomes a ``dtype`` array, dequantized if needed.
    """
    out, kept = {}, {}
    for module, parts in tensors.items():
        if "scales" in parts and keep_bits(_bits_of(parts)):
            kept[module] = {"group_size": GGUF_BLOCK, "bits": _bits_of(parts), "mode": "affine"}
            out[f"{module}.weight"] = parts["weight"]
            out[f"{module}.scales"] = parts["scales"].astype(dtype)
            out[f"{module}.biases"] = parts["biases"].astype(dtype)
        elif "scales" in parts:
            out[f"{module}.weight"] = dequantize_f32(parts, GGUF_BLOCK).astype(dtype)
        for suffix, array in parts.items():
            if suffix not in ("weight", "scales", "biases") or "scales" not in parts:
                out[f"{module}.{suffix}"] = array.astype(dtype)
    return out, kept


def write_model(out: Path, arch: Any, config: dict[str, Any], tensors: dict[str, dict], *,
                quantize: int | str | None, dtype: str, group_size: int, say: Progress) -> dict[str, Any]:
    """Build the mlx-lm model, load the weights strictly (catching any naming slip), save it.

    With ``quantize=N``, GGUF blocks that already have N bits are kept as they are: re-quantizing
    dequantized Q4_1 blocks with a different group size compounds the error (SmolLM2-135M stops
    answering "Paris"), and keeping them costs nothing.
    """
    import importlib

    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.utils import quantize_model, save_config, save_model

    module = importlib.import_module(f"mlx_lm.models.{arch.model_type}")
    model = module.Model(module.ModelArgs.from_dict(config))
    if quantize == KEEP:
        keep_bits = lambda bits: True  # noqa: E731
    elif isinstance(quantize, int):
        keep_bits = lambda bits: bits == quantize  # noqa: E731
    else:
        keep_bits = lambda bits: False  # noqa: E731
    weights, kept = materialize(tensors, getattr(mx, dtype), keep_bits)
    if hasattr(model, "sanitize"):
        weights = model.sanitize(weights)
    if kept:
        nn.quantize(model, class_predicate=lambda p, m: kept.get(p, False))
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as exc:
        raise GgufImportError(f"the converted weights do not fit mlx-lm's {arch.model_type} model: {exc}",
                              hint="this GGUF variant is not supported yet; import the original Hugging Face model"
                              ) from exc
    del weights
    config = dict(config)
    if kept:
        (bits, group), _ = Counter((q["bits"], q["group_size"]) for q in kept.values()).most_common(1)[0]
        quantization: dict[str, Any] = {"group_size": group, "bits": bits, "mode": "affine"}
        for path, params in kept.items():
            if (params["bits"], params["group_size"]) != (bits, group):
                quantization[path] = params
        config["quantization"] = quantization
    if isinstance(quantize, int):
        say(f"quantizing to {quantize} bits (group size {group_size})")
        with contextlib.redirect_stdout(sys.stderr):  # mlx-lm prints its bits-per-weight line
            model, config = quantize_model(model, config, group_size, quantize)
    say("saving weights")
    save_model(out, model, donate_model=True)
    save_config(config, out / "config.json")
    return config
