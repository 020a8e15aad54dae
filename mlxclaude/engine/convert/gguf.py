"""GGUF file (Ollama, LM Studio) → mlx-lm model directory.

The file is read with llama.cpp's ``gguf`` package (gguf_reader.py) and converted one tensor at a
time, so memory holds the output model plus one slice of float32 rows. Each tensor is renamed to the
mlx-lm model's name, llama.cpp's layout changes are undone (Q/K row permutation for llama, +1 on
Gemma norms), config.json is written from the metadata and the tokenizer files from the vocabulary
(``gguf_tokenizer``); the weights are loaded strictly into the mlx-lm model (catching any naming
slip) and saved with mlx-lm's own helpers, so ``mlx_lm.load(dir)`` works. The front-end (naming,
the imported-models directory, the check after import) is mlxclaude.models.gguf_import.

Output weights (gguf_quant.py decides per tensor):

* by default the file's size class: 2- to 4-bit types → MLX 4-bit, Q5_0 / Q5_1 / Q5_K → 5-bit,
  Q6_K / Q8_0 → 8-bit, F16 / BF16 / F32 matrices → that float type. Q4_0 / Q4_1 / Q4_K / Q5_x /
  Q8_0 blocks land exactly on MLX's group-32 grid, so those imports keep the file's values (scales
  and biases in float16);
* ``quantize=4`` / ``8`` (or 2, 3, 5, 6): every matrix quantized to that many bits (group 32 where
  the GGUF blocks fit it exactly, else 64, or ``group_size``);
* ``dtype``: without ``quantize``, every weight dequantized to that float type; with it, the type of
  the scales and the unquantized tensors.

Norms and biases stay float32 on a CPU-only mlx (they set the activations' type, and float16
activations decode tens of times slower there), else float16 (bfloat16 for a BF16 file).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mlxclaude.engine.convert.gguf_arch import ARCHES, ConfigError, Meta, is_dropped, llama3_rope_scaling, supported_architectures
from mlxclaude.engine.convert.gguf_quant import FLOAT_TYPES, Target, float_dtype_of, is_exact, quantize_affine, size_class
from mlxclaude.engine.convert.gguf_reader import GgufFile, GgufImportError
from mlxclaude.errors import UsageError

__all__ = ["GgufFile", "GgufImportError", "write_gguf_model", "open_gguf", "check_options", "check_gguf_file",
           "architecture_of", "unpermute_rows", "DTYPES", "QUANT_BITS", "Progress"]

GGUF_MAGIC = b"GGUF"
DTYPES = ("float32", "float16", "bfloat16")
QUANT_BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)
WORKERS = min(8, os.cpu_count() or 1)  # threads that dequantize and quantize slices of a tensor

Progress = Callable[[str], None]


def write_gguf_model(
    path: Path | str,
    out_dir: Path | str,
    *,
    quantize: int | str | None = None,
    dtype: str | None = None,
    group_size: int | None = None,
    progress: Progress | None = None,
    note: Progress | None = None,
    loaded: GgufFile | None = None,
) -> dict[str, Any]:
    """Write the mlx-lm model directory for the GGUF ``path`` into ``out_dir``; return its config.

    ``note`` receives one line saying what precision was chosen and why. The building block of
    mlxclaude.models.gguf_import.import_gguf (which adds naming, the models dir, the import record,
    atomic replacement and the check); tests use it to build into a cache directory of their own.
    """
    out_dir = Path(out_dir)
    say = progress or (lambda _msg: None)
    quantize, dtype = check_options(quantize, dtype, group_size)
    gguf_file = loaded or open_gguf(Path(path).expanduser(), say)
    arch = architecture_of(gguf_file.metadata, gguf_file.path)
    config, modules = build_config(arch, gguf_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    from mlxclaude.engine.convert.gguf_tokenizer import write_tokenizer_files

    say("writing tokenizer")  # first: it is quick, and fails early on a vocabulary we cannot rebuild
    write_tokenizer_files(gguf_file.metadata, out_dir, arch=arch.gguf_name,
                          context_length=config.get("max_position_embeddings"))
    model = new_model(arch, config)
    quantizable = {p for p, m in model.named_modules() if hasattr(m, "to_quantized")}
    targets = plan(gguf_file, modules, quantizable, quantize=quantize, dtype=dtype, group_size=group_size)
    if note:
        note(describe_plan(gguf_file, targets, quantize=quantize, dtype=dtype))
    weights = convert_tensors(arch, config, gguf_file, modules, targets, say)
    return write_model(out_dir, arch, model, config, weights, targets, modules, say=say)


# --- checks ----------------------------------------------------------------------------------


def check_options(quantize: int | str | None, dtype: str | None,
                  group_size: int | None) -> tuple[int | None, str | None]:
    """The validated ``(quantize, dtype)`` (a CLI may pass "4")."""
    if isinstance(quantize, str) and quantize.isdigit():
        quantize = int(quantize)
    if quantize == "gguf":
        raise UsageError("--quantize gguf is gone: a GGUF import keeps the file's own 4/8-bit size by default",
                         hint="leave --quantize out (Q4_0/Q4_1/Q4_K/Q8_0 blocks are kept exactly), or pass 4 or 8")
    if quantize is not None and quantize not in QUANT_BITS:
        raise UsageError(f"cannot quantize to {quantize!r} bits",
                         hint="use --quantize 4 or 8, or leave it out to keep the file's own size class")
    if dtype is not None and dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}")
    if group_size is not None and group_size not in GROUP_SIZES:
        raise UsageError(f"unsupported quantization group size {group_size}", hint="use 32, 64 or 128")
    return quantize, dtype


def check_gguf_file(path: Path) -> None:
    if path.is_dir():
        raise GgufImportError(f"{path} is a directory, not a GGUF file",
                              hint="to import a Hugging Face safetensors directory, pass the directory "
                                   "(it is converted with mlx-lm); for GGUF, pass the .gguf file itself")
    if not path.is_file():
        raise GgufImportError(f"no such file: {path}", hint="check the path; for a model in Ollama or LM Studio "
                                                           "use ollama:NAME[:TAG] or lmstudio:PUBLISHER/REPO")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise GgufImportError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')",
                              hint="pass a .gguf model file (llama.cpp / Ollama / LM Studio format)")


def open_gguf(path: Path, say: Progress | None = None) -> GgufFile:
    check_gguf_file(path)
    if say:
        say(f"reading {path.name}")
    return GgufFile(path)


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


# --- config and names ----------------------------------------------------------------------------


def build_config(arch: Any, gguf_file: GgufFile) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """(config.json dict, {GGUF tensor name: (mlx-lm module path, suffix)})."""
    metadata = gguf_file.metadata
    names = set(gguf_file.tensors)
    shapes = {k: t.shape for k, t in gguf_file.tensors.items()}
    try:
        config = arch.build_config(Meta(arch.gguf_name, metadata), names, shapes)
    except ConfigError as exc:
        raise GgufImportError(f"cannot build config.json: {exc}",
                              hint="the GGUF metadata is incomplete; re-convert it with a recent llama.cpp") from exc
    if arch.gguf_name == "llama" and "rope_freqs.weight" in names and "rope_scaling" not in config:
        factors = gguf_file.read("rope_freqs.weight").tolist()
        scaling = llama3_rope_scaling(factors, config["head_dim"], config["rope_theta"])
        if scaling:
            config["rope_scaling"] = scaling
    for key in ("bos_token_id", "eos_token_id"):
        if isinstance(metadata.get(f"tokenizer.ggml.{key}"), int):
            config[key] = metadata[f"tokenizer.ggml.{key}"]

    modules: dict[str, tuple[str, str]] = {}
    unknown = []
    for gguf_name in gguf_file.tensors:
        if is_dropped(gguf_name):
            continue
        base, _, suffix = gguf_name.rpartition(".")
        module = arch.module_path(base)
        if module is None or suffix not in ("weight", "bias"):
            unknown.append(gguf_name)
            continue
        modules[gguf_name] = (module, suffix)
    if unknown:
        shown = ", ".join(sorted(unknown)[:5]) + (" ..." if len(unknown) > 5 else "")
        raise GgufImportError(
            f"{len(unknown)} tensor(s) in this {arch.gguf_name} GGUF have no mlx-lm counterpart: {shown}",
            hint="this variant of the architecture is not supported yet; import the original Hugging Face model",
        )
    return config, modules


def new_model(arch: Any, config: dict[str, Any]) -> Any:
    """The mlx-lm model for ``config`` (its random initial weights are lazy: never computed)."""
    import importlib

    module = importlib.import_module(f"mlx_lm.models.{arch.model_type}")
    return module.Model(module.ModelArgs.from_dict(config))


# --- precision plan ------------------------------------------------------------------------------


def activation_dtype(gguf_file: GgufFile) -> str:
    """The type of norms and biases when none is asked for (see the module docstring)."""
    import mlx.core as mx

    if mx.default_device() == mx.cpu:
        return "float32"
    floats = [t for t in gguf_file.type_counts() if t in FLOAT_TYPES]
    return float_dtype_of(floats[0]) if len(floats) == 1 and floats[0] != "F32" else "float16"


def plan(gguf_file: GgufFile, modules: dict[str, tuple[str, str]], quantizable: set[str], *,
         quantize: int | None, dtype: str | None, group_size: int | None) -> dict[str, Target]:
    """{GGUF tensor name: what it becomes}."""
    small = dtype or activation_dtype(gguf_file)
    targets = {}
    for name, (module, suffix) in modules.items():
        info = gguf_file.tensors[name]
        matrix = suffix == "weight" and module in quantizable and len(info.shape) == 2
        if not matrix:
            targets[name] = Target(None, None, small)
            continue
        if quantize is None and dtype is not None:
            bits, group = None, None
        elif quantize is None:
            bits, group = size_class(info.type_name)
        else:
            bits = quantize
            group = 32 if is_exact(info.type_name, quantize, 32) else 64
        group = group_size or group
        if bits is not None and info.shape[-1] % group:
            group = next((g for g in (32, 64, 128) if info.shape[-1] % g == 0), None)
            bits = bits if group else None
        if bits is None:
            targets[name] = Target(None, None, dtype or float_dtype_of(info.type_name))
        else:
            targets[name] = Target(bits, group, dtype or "float16")
    return targets


def describe_plan(gguf_file: GgufFile, targets: dict[str, Target], *, quantize: int | None,
                  dtype: str | None) -> str:
    """One line: what each matrix type becomes, and why."""
    import mlx.core as mx

    matrices = {name: t for name, t in targets.items() if len(gguf_file.tensors[name].shape) == 2}
    counts = Counter((gguf_file.tensors[name].type_name, target) for name, target in matrices.items())
    parts = []
    for (type_name, target), count in sorted(counts.items(), key=lambda item: -item[1]):
        exact = " (exact)" if is_exact(type_name, target.bits, target.group_size) else ""
        parts.append(f"{count} {type_name} → {target.label()}{exact}")
    if quantize is not None or dtype is not None:
        asked = " ".join(f for f in (quantize and f"--quantize {quantize}", dtype and f"--dtype {dtype}") if f)
        why = f"as asked ({asked})"
    else:
        why = "the file's own size class (--quantize 4|8 or --dtype to choose)"
    line = f"{gguf_file.file_type() or 'GGUF'} file: {', '.join(parts)}: {why}"
    if mx.default_device() == mx.cpu and any(t.bits is None and t.dtype != "float32" for t in matrices.values()):
        line += "; 16-bit matrices decode ~3x slower than float32 on the CPU (--quantize 8 is smaller and faster)"
    return line


# --- converting ----------------------------------------------------------------------------------


def unpermute_rows(array: Any, n_head: int) -> Any:
    """Undo llama.cpp's Q/K permutation (inverse of ``mlx_lm.gguf.permute_weights``).

    llama.cpp interleaves the two rope halves of every head's rows; rows are output features, so
    the same row permutation applies to a weight, its bias, and a quantized weight's scales/biases.
    """
    rows = array.shape[0]
    rest = tuple(array.shape[1:])
    return array.reshape(n_head, rows // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def convert_tensors(arch: Any, config: dict[str, Any], gguf_file: GgufFile, modules: dict[str, tuple[str, str]],
                    targets: dict[str, Target], say: Progress) -> dict[str, Any]:
    """{mlx-lm parameter name: mx.array}: each GGUF tensor dequantized a slice of rows at a time and
    turned into its target (quantized, or a float type)."""
    import mlx.core as mx

    weights: dict[str, Any] = {}
    total = len(modules)
    for index, (name, (module, suffix)) in enumerate(modules.items(), 1):
        say(f"converting weights: tensor {index}/{total}")
        shift = arch.norm_shift if module.rsplit(".", 1)[-1].endswith("norm") and suffix == "weight" else 0.0
        parts = convert_one(gguf_file, name, targets[name], shift)
        heads = None
        if arch.permute_qk and module.endswith("self_attn.q_proj"):
            heads = config["num_attention_heads"]
        elif arch.permute_qk and module.endswith("self_attn.k_proj"):
            heads = config["num_key_value_heads"]
        if heads:
            parts = {part: unpermute_rows(array, heads) for part, array in parts.items()}
        mx.eval(list(parts.values()))
        if suffix == "bias":
            weights[f"{module}.bias"] = parts["weight"]
        else:
            weights.update((f"{module}.{part}", array) for part, array in parts.items())
    return weights


def convert_one(gguf_file: GgufFile, name: str, target: Target, shift: float) -> dict[str, Any]:
    """{"weight": ...} for a float target, {"weight", "scales", "biases"} for a quantized one."""
    import mlx.core as mx

    info = gguf_file.tensors[name]
    out_dtype = getattr(mx, target.dtype)
    exact = is_exact(info.type_name, target.bits, target.group_size)

    def work(raw):  # numpy only, on a worker thread: numpy lets go of the GIL in its loops
        rows = gguf_file.dequantize(name, raw)
        if target.bits is None:
            return rows - shift if shift else rows
        return quantize_affine(rows, target.bits, target.group_size, target.dtype, find_grid=exact)

    parts: list[list[Any]] = [[], [], []]
    for result in ordered_map(work, gguf_file.slices(name)):
        arrays = [mx.array(result).astype(out_dtype)] if target.bits is None else \
            [mx.array(result[0]), mx.array(result[1]).astype(out_dtype), mx.array(result[2]).astype(out_dtype)]
        mx.eval(arrays)
        for part, array in zip(parts, arrays):
            part.append(array)
    rows_shape = info.shape[:-1]
    if target.bits is None:
        return {"weight": mx.concatenate(parts[0]).reshape(info.shape)}
    return {key: mx.concatenate(part).reshape(*rows_shape, -1)
            for key, part in zip(("weight", "scales", "biases"), parts)}


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int | None = None) -> Iterator[Any]:
    """``map(fn, items)`` on a few threads, in order, with at most two items per thread in flight (so
    memory stays bounded by the slices, not the tensor)."""
    workers = workers or WORKERS
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_model(out: Path, arch: Any, model: Any, config: dict[str, Any], weights: dict[str, Any],
                targets: dict[str, Target], modules: dict[str, tuple[str, str]], *, say: Progress) -> dict[str, Any]:
    """Load the weights strictly into the mlx-lm model (catching any naming slip) and save it."""
    import mlx.nn as nn
    from mlx_lm.utils import save_config, save_model

    quantized = {modules[name][0]: {"group_size": target.group_size, "bits": target.bits, "mode": "affine"}
                 for name, target in targets.items() if target.bits is not None}
    if hasattr(model, "sanitize"):
        weights = model.sanitize(weights)
    if quantized:
        nn.quantize(model, class_predicate=lambda p, m: quantized.get(p, False))
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as exc:
        raise GgufImportError(f"the converted weights do not fit mlx-lm's {arch.model_type} model: {exc}",
                              hint="this GGUF variant is not supported yet; import the original Hugging Face model"
                              ) from exc
    del weights
    config = dict(config)
    if quantized:
        (bits, group), _ = Counter((q["bits"], q["group_size"]) for q in quantized.values()).most_common(1)[0]
        quantization: dict[str, Any] = {"group_size": group, "bits": bits, "mode": "affine"}
        for path, params in quantized.items():
            if (params["bits"], params["group_size"]) != (bits, group):
                quantization[path] = params
        config["quantization"] = quantization
    else:
        matrices = Counter(t.dtype for name, t in targets.items() if modules[name][1] == "weight"
                           and not modules[name][0].endswith("norm"))
        config["torch_dtype"] = matrices.most_common(1)[0][0] if matrices else "float32"
    say("saving weights")
    with contextlib.redirect_stdout(sys.stderr):
        save_model(out, model, donate_model=True)
    save_config(config, out / "config.json")
    return config

