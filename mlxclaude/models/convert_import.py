"""`mlxclaude models import DIR`: convert a Hugging Face safetensors model directory with mlx-lm.

The directory (a local checkout, or a snapshot in the Hugging Face cache) is checked here, handed to
mlxclaude.engine.convert.safetensors (``mlx_lm.convert``), optionally quantized, and the result lands
in ``paths.imported_models_dir() / name`` like a GGUF import.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from mlxclaude.engine.convert.gguf import DTYPES, QUANT_BITS, Progress
from mlxclaude.engine.convert.safetensors import ConvertImportError, convert_directory, default_dtype, supported_by_mlx_lm
from mlxclaude.errors import UsageError
from mlxclaude.models.imported import IMPORT_RECORD, build_atomically, destination


def import_safetensors_dir(
    path: Path | str,
    *,
    name: str | None = None,
    quantize: int | None = None,
    dtype: str | None = None,
    group_size: int = 64,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Convert the model directory ``path`` into ``paths.imported_models_dir() / name``; return that dir.

    ``dtype=None`` keeps the model's own dtype (mlx-lm's choice) when mlx has a GPU, and picks
    float32 on a CPU-only mlx: there bfloat16 / float16 (and quantized layers with such scales)
    decode ten to forty times slower than float32.
    """
    path = Path(path).expanduser()
    say = progress or (lambda _msg: None)
    if isinstance(quantize, str) and quantize.isdigit():
        quantize = int(quantize)
    if quantize is not None and quantize not in QUANT_BITS:
        raise UsageError(f"cannot quantize to {quantize!r} bits",
                         hint="use --quantize 4 or 8, or leave it out to keep the model's precision")
    if dtype is not None and dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}")
    config = check_model_dir(path)
    dtype = dtype or default_dtype()
    name = name or default_name(path)
    dest = destination(name, overwrite=overwrite)

    started = time.perf_counter()

    def build(tmp: Path) -> None:
        tmp.rmdir()  # mlx_lm.convert refuses an existing output directory; this one is ours and empty
        say(f"converting {path.name}" + (f" to {quantize}-bit" if quantize else ""))
        try:
            convert_directory(path, tmp, quantize=quantize, group_size=group_size, dtype=dtype)
        finally:
            tmp.mkdir(exist_ok=True)  # let build_atomically clean up or move whatever is there
        record = {"source": str(path.resolve()), "format": "safetensors", "model_type": config.get("model_type"),
                  "quantize": quantize, "dtype": dtype}
        (tmp / IMPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    build_atomically(dest, build, overwrite=overwrite)
    say(f"imported {name} in {time.perf_counter() - started:.1f}s")
    return dest


def check_model_dir(path: Path) -> dict[str, Any]:
    """The directory's config.json, after checking it looks like a model mlx-lm can convert."""
    if path.is_file():
        hint = ("pass the .gguf file to import a GGUF" if path.suffix.lower() != ".gguf"
                else "this is a GGUF file; it is imported by the GGUF importer, not converted")
        raise ConvertImportError(f"{path} is a file, not a model directory", hint=hint)
    if not path.is_dir():
        raise ConvertImportError(f"no such directory: {path}", hint="pass a Hugging Face model directory "
                                                                   "(config.json + *.safetensors)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConvertImportError(f"{path} is not a model directory (no config.json)",
                                 hint="pass a Hugging Face model directory with config.json, *.safetensors "
                                      "and tokenizer files, or a .gguf file")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConvertImportError(f"{config_file} is not valid JSON: {exc}",
                                 hint="re-download the model; the config file is damaged") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise ConvertImportError(f"{config_file} has no model_type, so mlx-lm cannot tell the architecture",
                                 hint="pass the directory of a Hugging Face transformers model")
    if not list(path.glob("model*.safetensors")):
        other = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".safetensors"))
        found = f" (found {', '.join(other[:3])})" if other else ""
        raise ConvertImportError(f"{path} has no model*.safetensors weights{found}",
                                 hint="mlx-lm reads safetensors only; download the safetensors version of the "
                                      "model or convert the checkpoint with transformers' save_pretrained")
    model_type = config["model_type"]
    if not supported_by_mlx_lm(config):
        raise ConvertImportError(f"mlx-lm does not support model_type {model_type!r}",
                                 hint="upgrade mlx-lm (pip install -U mlx-lm), or pick a model with a "
                                      "supported architecture")
    return config


def default_name(path: Path) -> str:
    """The directory name; for a Hugging Face cache snapshot, the repo name (models--org--NAME)."""
    resolved = path.resolve()
    stem = resolved.name
    if resolved.parent.name == "snapshots" and resolved.parent.parent.name.startswith("models--"):
        stem = resolved.parent.parent.name.split("--")[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")
    return name or "imported-model"
