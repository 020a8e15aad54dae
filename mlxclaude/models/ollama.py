"""`models import ollama:NAME[:TAG]`: find the GGUF blob of a model in Ollama's local store.

Ollama keeps one manifest per model and tag, ``<models>/manifests/<registry>/<namespace>/<name>/<tag>``
(``registry.ollama.ai/library/qwen2.5/7b`` for ``qwen2.5:7b``; ``user/name`` models use their own
namespace, and ``hf.co/org/repo:tag`` its own registry). The manifest's layer of media type
``application/vnd.ollama.image.model`` names the GGUF file, stored as ``<models>/blobs/sha256-<hex>``.
``<models>`` is ``$OLLAMA_MODELS``, else ``~/.ollama/models``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mlxclaude.errors import MlxClaudeError

PREFIX = "ollama:"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
SHOWN = 8  # models listed in a "not found" hint


class OllamaError(MlxClaudeError):
    """An Ollama model that cannot be found or read."""


@dataclass(frozen=True)
class OllamaModel:
    ref: str  # as Ollama shows it: qwen2.5:7b, user/name:tag
    blob: Path  # the GGUF file
    default_name: str  # NAME-TAG


def models_dir() -> Path:
    value = os.environ.get("OLLAMA_MODELS")
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


def split_ref(ref: str) -> tuple[str, str, str, str]:
    """(registry, namespace, name, tag) of ``name``, ``name:tag``, ``user/name:tag`` or ``host/user/name:tag``."""
    path, tag = ref, DEFAULT_TAG
    head, sep, tail = ref.rpartition(":")
    if sep and "/" not in tail:
        path, tag = head, tail
    parts = [p for p in path.split("/") if p]
    if not parts or not tag or len(parts) > 3 or any(p in (".", "..") for p in parts + [tag]):
        raise OllamaError(f"not an Ollama model name: {ref!r}",
                          hint="use ollama:NAME[:TAG], e.g. ollama:qwen2.5-coder:7b (as `ollama list` shows it)")
    if len(parts) == 1:
        return DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0], tag
    if len(parts) == 2:
        return DEFAULT_REGISTRY, parts[0], parts[1], tag
    return parts[0], parts[1], parts[2], tag


def display_ref(registry: str, namespace: str, name: str, tag: str) -> str:
    if registry != DEFAULT_REGISTRY:
        return f"{registry}/{namespace}/{name}:{tag}"
    return f"{name}:{tag}" if namespace == DEFAULT_NAMESPACE else f"{namespace}/{name}:{tag}"


def list_models(root: Path | None = None) -> list[str]:
    """Every model:tag with a manifest in the store, as Ollama names them."""
    manifests = (root or models_dir()) / "manifests"
    found = []
    if manifests.is_dir():
        for manifest in manifests.glob("*/*/*/*"):
            if manifest.is_file():
                registry, namespace, name, tag = manifest.relative_to(manifests).parts
                found.append(display_ref(registry, namespace, name, tag))
    return sorted(found)


def find_model(ref: str, root: Path | None = None) -> OllamaModel:
    """The GGUF blob of ``ref`` (without the ``ollama:`` prefix) in the Ollama store."""
    root = root or models_dir()
    registry, namespace, name, tag = split_ref(ref)
    shown = display_ref(registry, namespace, name, tag)
    if not (root / "manifests").is_dir():
        raise OllamaError(f"no Ollama models at {root}",
                          hint="pull the model with `ollama pull` first, or set OLLAMA_MODELS to the models "
                               "directory (a Linux service install keeps it in /usr/share/ollama/.ollama/models)")
    manifest = root / "manifests" / registry / namespace / name / tag
    if not manifest.is_file():
        available = list_models(root)
        same = [m for m in available if m.split(":")[0] == shown.split(":")[0]]
        listed = ", ".join((same or available)[:SHOWN]) + (" …" if len(same or available) > SHOWN else "")
        raise OllamaError(f"Ollama has no model {shown} in {root}",
                          hint=f"{'tags there' if same else 'models there'}: {listed}" if available
                          else f"the store is empty: `ollama pull {shown}` first")
    try:
        layers = json.loads(manifest.read_text()).get("layers") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise OllamaError(f"cannot read the Ollama manifest {manifest}: {exc}",
                          hint=f"`ollama pull {shown}` again to repair it") from exc
    digests = [layer.get("digest", "") for layer in layers
               if isinstance(layer, dict) and layer.get("mediaType") == MODEL_MEDIA_TYPE]
    if not digests:
        raise OllamaError(f"the Ollama manifest of {shown} has no model layer ({MODEL_MEDIA_TYPE})",
                          hint="it may be an adapter or a cloud model with no local weights")
    digest = digests[0]
    if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
        raise OllamaError(f"the Ollama manifest of {shown} names an odd blob digest {digest!r}",
                          hint=f"`ollama pull {shown}` again to repair it")
    blob = root / "blobs" / digest.replace(":", "-")
    if not blob.is_file():
        raise OllamaError(f"the GGUF blob of {shown} is missing: {blob}",
                          hint=f"`ollama pull {shown}` again to download it")
    default = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{name}-{tag}").strip("-._") or "ollama-model"
    return OllamaModel(shown, blob, default)
