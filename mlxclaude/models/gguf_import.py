"""`mlxclaude models import FILE.gguf`: a GGUF file (Ollama, LM Studio) into an imported model directory.

The conversion is mlxclaude.engine.convert.gguf; this front-end names the model (from the file, or
for an Ollama blob from its metadata), picks its directory under paths.imported_models_dir(),
builds it atomically and leaves an import record next to the weights.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from mlxclaude.engine.convert.gguf import (  # noqa: F401  (GgufImportError: what callers catch)
    GgufImportError, Progress, architecture_of, check_gguf_file, check_options, read_gguf, write_gguf_model,
)
from mlxclaude.models.imported import IMPORT_RECORD, build_atomically, destination


def import_gguf(
    path: Path | str,
    *,
    name: str | None = None,
    quantize: int | str | None = None,
    dtype: str = "float32",
    group_size: int = 64,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Import a GGUF file into ``paths.imported_models_dir() / name`` and return that directory."""
    path = Path(path).expanduser()
    say = progress or (lambda _msg: None)
    quantize = check_options(quantize, dtype, group_size)
    check_gguf_file(path)
    blob = name is None and path.name.startswith("sha256")  # an Ollama blob: name it from its metadata
    if not blob:
        name = name or default_name(path)
        dest = destination(name, overwrite=overwrite)

    started = time.perf_counter()
    say(f"reading {path.name}")
    weights, metadata = read_gguf(path)
    architecture_of(metadata, path)  # fail before anything is written
    if blob:
        name = default_name(path, metadata)
        dest = destination(name, overwrite=overwrite)
    record = {
        "source": str(path.resolve()),
        "format": "gguf",
        "architecture": metadata.get("general.architecture"),
        "gguf_file_type": metadata.get("general.file_type"),
        "gguf_name": metadata.get("general.name"),
        "quantize": quantize,
        "dtype": dtype,
    }

    def build(tmp: Path) -> None:
        write_gguf_model(path, tmp, quantize=quantize, dtype=dtype, group_size=group_size, progress=say,
                         loaded=(weights, metadata))
        (tmp / IMPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    build_atomically(dest, build, overwrite=overwrite)
    say(f"imported {name} in {time.perf_counter() - started:.1f}s")
    return dest


def default_name(path: Path, metadata: dict[str, Any] | None = None) -> str:
    """A directory name from the file name (``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``SmolLM2-135M-Instruct-Q4_1``)."""
    stem = path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.name
    if stem.startswith("sha256") and metadata:  # an Ollama blob: the metadata names it better
        stem = str(metadata.get("general.basename") or metadata.get("general.name") or stem)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-._")
    return name or "imported-model"
