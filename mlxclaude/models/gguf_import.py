"""`mlxclaude models import FILE.gguf | ollama:NAME[:TAG] | lmstudio:PUBLISHER/REPO`: a GGUF file into an
imported model directory.

The conversion is mlxclaude.engine.convert.gguf; this front-end finds the file (a path, Ollama's store
through mlxclaude.models.ollama, LM Studio's folder through mlxclaude.models.lmstudio), names the model
(from the file; for an Ollama model NAME-TAG), picks its directory under paths.imported_models_dir(),
builds it atomically, checks it with a few greedy tokens (engine.convert.gguf_verify) before it is put
in place, and leaves an import record next to the weights.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxclaude.engine.convert.gguf import GgufImportError, Progress, architecture_of, check_options, open_gguf, write_gguf_model  # noqa: F401  (GgufImportError: what callers catch)
from mlxclaude.models import lmstudio, ollama
from mlxclaude.models.imported import IMPORT_RECORD, build_atomically, destination

STORE_PREFIXES = (ollama.PREFIX, lmstudio.PREFIX)


@dataclass(frozen=True)
class GgufSource:
    path: Path
    label: str  # what the user named: a path, ollama:qwen2.5:7b, lmstudio:org/repo/file.gguf
    default_name: str | None  # None: from the file


def is_store_ref(source: str) -> bool:
    """Whether ``source`` names a model in Ollama's or LM Studio's store rather than a path."""
    return source.startswith(STORE_PREFIXES) and not Path(source).expanduser().exists()


def resolve_source(source: str | Path) -> GgufSource:
    """The GGUF file behind ``source``: a path, ``ollama:NAME[:TAG]`` or ``lmstudio:PUBLISHER/REPO[/FILE]``."""
    text = str(source)
    if isinstance(source, str) and is_store_ref(text):
        if text.startswith(ollama.PREFIX):
            found = ollama.find_model(text[len(ollama.PREFIX):])
            return GgufSource(found.blob, f"{ollama.PREFIX}{found.ref}", found.default_name)
        found_lm = lmstudio.find_model(text[len(lmstudio.PREFIX):])
        return GgufSource(found_lm.path, f"{lmstudio.PREFIX}{found_lm.ref}", None)
    path = Path(source).expanduser()
    return GgufSource(path, str(path), None)


def import_gguf(
    path: Path | str,
    *,
    name: str | None = None,
    quantize: int | str | None = None,
    dtype: str | None = None,
    group_size: int | None = None,
    overwrite: bool = False,
    verify: bool = True,
    progress: Progress | None = None,
    note: Progress | None = None,
) -> Path:
    """Import a GGUF file (or an ``ollama:`` / ``lmstudio:`` model) into ``paths.imported_models_dir() / name``
    and return that directory. ``note`` receives the lines worth keeping on screen: the precision chosen and
    why, and the check's result."""
    say = progress or (lambda _msg: None)
    quantize, dtype = check_options(quantize, dtype, group_size)
    source = resolve_source(path)
    path = source.path
    blob = name is None and source.default_name is None and path.name.startswith("sha256")
    if not blob:  # fail on a taken name before the (long) work
        name = name or source.default_name or default_name(path)
        dest = destination(name, overwrite=overwrite)

    started = time.perf_counter()
    gguf_file = open_gguf(path, say)
    metadata = gguf_file.metadata
    architecture_of(metadata, path)  # fail before anything is written
    if blob:  # an Ollama blob passed by path: the metadata names it better than its digest
        name = default_name(path, metadata)
        dest = destination(name, overwrite=overwrite)
    record: dict[str, Any] = {
        "source": source.label if source.label.startswith(STORE_PREFIXES) else str(path.resolve()),
        "file": str(path.resolve()),
        "format": "gguf",
        "architecture": metadata.get("general.architecture"),
        "gguf_file_type": gguf_file.file_type(),
        "gguf_name": metadata.get("general.name"),
        "quantize": quantize,
        "dtype": dtype,
    }
    notes: list[str] = []

    def keep(line: str) -> None:
        notes.append(line)
        if note:
            note(line)

    def build(tmp: Path) -> None:
        config = write_gguf_model(path, tmp, quantize=quantize, dtype=dtype, group_size=group_size, progress=say,
                                  note=keep, loaded=gguf_file)
        record["quantization"] = config.get("quantization")
        record["precision"] = notes[0] if notes else None
        if verify:
            from mlxclaude.engine.convert.gguf_verify import verify_import

            say("checking the import with a few greedy tokens")
            report = verify_import(tmp, metadata)
            record["check"] = {"ok": report.ok, "generated_ids": report.generated_ids,
                               "text": report.generated_text, "problems": report.problems}
            if not report.ok:
                raise GgufImportError(
                    "the imported model failed its check: " + "; ".join(report.problems),
                    hint="nothing was imported; this is a bug in the GGUF import (please report it with the "
                         "file's name); --no-verify imports it anyway")
            keep(f"check: {report.summary()}")
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
