"""`models import ollama:NAME[:TAG]` and `lmstudio:PUBLISHER/REPO[/FILE]`: GGUF files found in a fake Ollama
store and LM Studio folder laid out under the test's own home, imported through the API and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from mlxclaude import paths
from mlxclaude.models.gguf_import import import_gguf, resolve_source
from mlxclaude.models.lmstudio import LmStudioError
from mlxclaude.models.ollama import OllamaError, find_model, split_ref
from support.cli_app import run_cli
from support.gguf_files import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.Q8_0.gguf"
    write_tiny_gguf(path, tiny_model_dir, "Q8_0")
    return path


def ollama_model(root: Path, gguf: Path, ref_path: str, tag: str = "latest", *, model_layer: bool = True,
                 blob: bool = True) -> Path:
    """Lay out ``gguf`` in an Ollama store as ``<registry>/<namespace>/<name>/<tag>`` and return the blob."""
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    blob_path = root / "blobs" / f"sha256-{digest}"
    blob_path.parent.mkdir(parents=True, exist_ok=True)
    if blob:
        shutil.copyfile(gguf, blob_path)
    layers = [{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "1" * 64, "size": 10},
              {"mediaType": "application/vnd.ollama.image.params", "digest": "sha256:" + "2" * 64, "size": 10}]
    if model_layer:
        layers.insert(0, {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
                          "size": gguf.stat().st_size})
    manifest = root / "manifests" / ref_path / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "3" * 64},
                                    "layers": layers}))
    return blob_path


def ollama_root() -> Path:
    return Path.home() / ".ollama" / "models"


# --- Ollama ---------------------------------------------------------------------------------------


def test_split_ref():
    assert split_ref("qwen2.5") == ("registry.ollama.ai", "library", "qwen2.5", "latest")
    assert split_ref("qwen2.5-coder:7b") == ("registry.ollama.ai", "library", "qwen2.5-coder", "7b")
    assert split_ref("someone/tiny:q8") == ("registry.ollama.ai", "someone", "tiny", "q8")
    assert split_ref("hf.co/org/repo-GGUF:Q4_K_M") == ("hf.co", "org", "repo-GGUF", "Q4_K_M")
    for bad in ("", ":7b", "a/b/c/d", "../x"):
        with pytest.raises(OllamaError):
            split_ref(bad)


def test_import_from_the_ollama_store(tiny_gguf):
    blob = ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/tiny")
    notes = []
    dest = import_gguf("ollama:tiny", note=notes.append)
    assert dest == paths.imported_models_dir() / "tiny-latest"
    record = json.loads((dest / "mlxclaude_import.json").read_text())
    assert record["source"] == "ollama:tiny:latest" and record["file"] == str(blob.resolve())
    assert record["check"]["ok"]
    assert notes[0].startswith("Q8_0 file: ") and notes[1].startswith("check: ")


def test_namespaced_and_other_registries_and_ollama_models_env(tiny_gguf, tmp_path, monkeypatch):
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/someone/tiny", "q8")
    assert find_model("someone/tiny:q8").default_name == "tiny-q8"
    elsewhere = tmp_path / "ollama-models"
    blob = ollama_model(elsewhere, tiny_gguf, "hf.co/org/Tiny-GGUF", "Q8_0")
    monkeypatch.setenv("OLLAMA_MODELS", str(elsewhere))
    found = resolve_source("ollama:hf.co/org/Tiny-GGUF:Q8_0")
    assert found.path == blob and found.default_name == "Tiny-GGUF-Q8_0"
    assert found.label == "ollama:hf.co/org/Tiny-GGUF:Q8_0"


def test_ollama_errors_say_what_is_there(tiny_gguf):
    with pytest.raises(OllamaError) as excinfo:
        find_model("tiny")
    assert "no Ollama models" in excinfo.value.message and "OLLAMA_MODELS" in excinfo.value.hint
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/tiny", "q8")
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/other", "7b")
    with pytest.raises(OllamaError) as excinfo:
        find_model("tiny")  # :latest is not there, :q8 is
    assert excinfo.value.message == f"Ollama has no model tiny:latest in {ollama_root()}"
    assert excinfo.value.hint == "tags there: tiny:q8"
    with pytest.raises(OllamaError) as excinfo:
        find_model("missing:1b")
    assert excinfo.value.hint == "models there: other:7b, tiny:q8"
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/adapter", model_layer=False)
    with pytest.raises(OllamaError, match="no model layer"):
        find_model("adapter")
    for file in (ollama_root() / "blobs").iterdir():
        file.unlink()
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/gone", blob=False)
    with pytest.raises(OllamaError) as excinfo:
        find_model("gone")
    assert "blob of gone:latest is missing" in excinfo.value.message and "ollama pull gone" in excinfo.value.hint


def test_an_ollama_blob_by_path_is_named_from_its_metadata(tiny_gguf):
    blob = ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/tiny")
    dest = import_gguf(blob, verify=False)
    assert dest.name == "tiny-Q8_0"  # general.name


# --- LM Studio ------------------------------------------------------------------------------------


def lmstudio_repo(gguf: Path, root: Path, repo: str, *files: str) -> Path:
    folder = root / repo
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        os.link(gguf, folder / name)
    return folder


def test_import_from_lm_studio(tiny_gguf):
    root = Path.home() / ".lmstudio" / "models"
    lmstudio_repo(tiny_gguf, root, "pub/Tiny-GGUF", "Tiny-Q8_0.gguf", "mmproj-Tiny-f16.gguf")
    dest = import_gguf("lmstudio:pub/Tiny-GGUF", verify=False)
    assert dest.name == "Tiny-Q8_0"
    record = json.loads((dest / "mlxclaude_import.json").read_text())
    assert record["source"] == "lmstudio:pub/Tiny-GGUF/Tiny-Q8_0.gguf"
    assert resolve_source("lmstudio:Tiny-GGUF").path == root / "pub/Tiny-GGUF/Tiny-Q8_0.gguf"  # one publisher has it


def test_lm_studio_choices_and_errors(tiny_gguf):
    with pytest.raises(LmStudioError, match="no LM Studio models folder"):
        resolve_source("lmstudio:pub/repo")
    root = Path.home() / ".cache" / "lm-studio" / "models"  # the older location
    lmstudio_repo(tiny_gguf, root, "pub/Two-GGUF", "Two-Q4_K_M.gguf", "Two-Q8_0.gguf")
    with pytest.raises(LmStudioError) as excinfo:
        resolve_source("lmstudio:pub/Two-GGUF")
    assert excinfo.value.message == "lmstudio:pub/Two-GGUF holds 2 GGUF files; name one"
    assert excinfo.value.hint == "lmstudio:pub/Two-GGUF/Two-Q4_K_M.gguf, lmstudio:pub/Two-GGUF/Two-Q8_0.gguf"
    assert resolve_source("lmstudio:pub/Two-GGUF/Two-Q8_0.gguf").path == root / "pub/Two-GGUF/Two-Q8_0.gguf"
    with pytest.raises(LmStudioError) as excinfo:
        resolve_source("lmstudio:pub/Two-GGUF/Three.gguf")
    assert "Two-Q4_K_M.gguf, Two-Q8_0.gguf" in excinfo.value.hint
    with pytest.raises(LmStudioError) as excinfo:
        resolve_source("lmstudio:nobody/Missing")
    assert "is not in" in excinfo.value.message and excinfo.value.hint == "models there: pub/Two-GGUF"


# --- the command ----------------------------------------------------------------------------------


def test_cli_imports_from_ollama_and_explains(tiny_gguf):
    ollama_model(ollama_root(), tiny_gguf, "registry.ollama.ai/library/tiny", "q8")
    result = run_cli("models", "import", "ollama:tiny:q8", "--no-verify")
    assert result.code == 0, result.err
    assert result.out.strip() == str(paths.imported_models_dir() / "tiny-q8")
    assert "note: Q8_0 file: " in result.err and "8-bit/g32 (exact)" in result.err

    result = run_cli("models", "import", "ollama:nothere")
    assert result.code == 1
    assert "Ollama has no model nothere:latest" in result.err and "tiny:q8" in result.err


@pytest.mark.parametrize("args,message", [
    (["--quantize", "gguf"], "--quantize gguf is gone"),
    (["--quantize", "3"], "--quantize must be 4 or 8"),
    (["--dtype", "float64"], "--dtype must be float16, bfloat16 or float32"),
])
def test_cli_rejects_bad_precision_options(tiny_gguf, args, message):
    result = run_cli("models", "import", str(tiny_gguf), *args)
    assert result.code == 2 and message in result.err
