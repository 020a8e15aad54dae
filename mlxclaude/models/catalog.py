"""The models on this machine: MLX models in the Hugging Face cache plus `mlxclaude models import` output.

A Hugging Face cache repo counts as an MLX model when its snapshot has config.json and
model*.safetensors at the top (what mlx-lm loads) and one of:
  * config.json has a `quantization` key (mlx-lm's own quantized format),
  * the repo id mentions "mlx" (mlx-community/..., someone/...-mlx),
  * config.json's model_type is an architecture the installed mlx-lm implements
    (mlx_lm/models/<model_type>.py; plain Hugging Face safetensors checkpoints load too).
Every directory under paths.imported_models_dir() with a config.json is an imported model.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from mlxclaude import paths
from mlxclaude.errors import MlxClaudeError, ModelNotFound
from mlxclaude.models.resolve import not_found

# Weights are assumed to need this much more memory once loaded (KV cache, activations, buffers).
MEMORY_OVERHEAD = 1.2
_NAME_BOUNDARIES = "/-_."
_DTYPES = {"bfloat16": "bf16", "float16": "f16", "float32": "f32", "bf16": "bf16", "fp16": "f16", "fp32": "f32"}


class AmbiguousModelName(ModelNotFound):
    pass


@dataclass
class LocalModel:
    name: str  # repo id for the HF cache, directory name for imported models
    path: Path  # the directory to load (an HF snapshot, or the imported directory)
    source: Literal["hf", "imported"]
    repo_id: str | None
    revision: str | None  # commit hash of the snapshot (HF only)
    size_bytes: int
    quant: str | None  # "4bit", "8bit", "bf16", "f16", "f32", …
    context_length: int
    tool_format: str | None  # name of the tool-call format the chat template uses, e.g. "hermes"
    thinking: bool  # the chat template mentions <think>
    fits_in_memory: bool
    complete: bool = True  # every weight shard listed in model.safetensors.index.json is present
    vision: bool = False  # a vision-language model (it sees images when the `vision` extra is installed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


# -- listing ----------------------------------------------------------------------------------


def list_models() -> list[LocalModel]:
    """Every MLX model in the HF cache and every imported model, sorted by name."""
    models = [*_hf_models(), *_imported_models()]
    return sorted(models, key=lambda model: (model.name.lower(), model.source))


def _hf_models() -> list[LocalModel]:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(paths.hf_hub_cache())
    except (CacheNotFound, OSError):
        return []
    models = []
    for repo in cache.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda rev: ("main" in rev.refs, bool(rev.refs), rev.last_modified))
        snapshot = Path(revision.snapshot_path)
        if not _is_mlx_snapshot(repo.repo_id, snapshot):
            continue
        models.append(
            describe_model(snapshot, name=repo.repo_id, source="hf", repo_id=repo.repo_id,
                           revision=revision.commit_hash, size_bytes=revision.size_on_disk)
        )
    return models


def _imported_models() -> list[LocalModel]:
    root = paths.imported_models_dir()
    if not root.is_dir():
        return []
    return [
        describe_model(child, name=child.name, source="imported")
        for child in sorted(root.iterdir())
        if child.is_dir() and not child.name.startswith(".") and (child / "config.json").is_file()
    ]


def _is_mlx_snapshot(repo_id: str, snapshot: Path) -> bool:
    config = _read_json(snapshot / "config.json")
    if config is None or not any(snapshot.glob("model*.safetensors")):
        return False
    if "quantization" in config or "mlx" in repo_id.lower():
        return True
    model_type = config.get("model_type")
    return isinstance(model_type, str) and model_type in _mlx_model_types()


@lru_cache(maxsize=1)
def _mlx_model_types() -> frozenset[str]:
    """Architectures the installed mlx-lm (and mlx-vlm) implement, found without importing mlx."""
    import importlib.util

    found: set[str] = set()
    for package in ("mlx_lm", "mlx_vlm"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        models_dir = Path(next(iter(spec.submodule_search_locations))) / "models"
        found.update(p.stem for p in models_dir.iterdir() if not p.stem.startswith("_"))
    return frozenset(found)


# -- describing one directory -----------------------------------------------------------------


def describe_model(
    path: Path,
    *,
    name: str | None = None,
    source: Literal["hf", "imported"] = "imported",
    repo_id: str | None = None,
    revision: str | None = None,
    size_bytes: int | None = None,
) -> LocalModel:
    """Facts about one model directory, read from its files (nothing is loaded)."""
    from mlxclaude.engine import memory
    from mlxclaude.engine.loader import context_length_of, is_vision_config
    from mlxclaude.parsing.tools import detect_tool_format

    config = _read_json(path / "config.json") or {}
    template = chat_template_of(path)
    tool_format = detect_tool_format(template)
    weights = sum(p.stat().st_size for p in path.glob("model*.safetensors") if p.exists())
    total_memory = memory.memory_facts().total_bytes
    return LocalModel(
        name=name or path.name,
        path=path,
        source=source,
        repo_id=repo_id,
        revision=revision,
        size_bytes=size_bytes if size_bytes is not None else _dir_size(path),
        quant=quant_of(config),
        context_length=context_length_of(config),
        tool_format=(tool_format.name or "unnamed") if tool_format else None,
        thinking=bool(template and "<think>" in template),
        fits_in_memory=total_memory is None or weights * MEMORY_OVERHEAD <= total_memory,
        complete=_weights_complete(path),
        vision=is_vision_config(config),
    )


def sight_of(model: LocalModel) -> str:
    """`yes` (mlx-vlm runs it and it sees images), `needs [vision]` (a vision model without mlx-vlm) or `-`."""
    from mlxclaude.engine.loader import vision_engine_installed

    if not model.vision:
        return "-"
    return "yes" if vision_engine_installed() else "needs [vision]"


def quant_of(config: dict) -> str | None:
    """"4bit"/"8bit"/… for quantized weights, else the dtype ("bf16", "f16", "f32"); None if unknown."""
    for key in ("quantization", "quantization_config"):
        quant = config.get(key)
        if isinstance(quant, dict) and isinstance(quant.get("bits"), int):
            return f"{quant['bits']}bit"
        if isinstance(quant, dict) and isinstance(quant.get("mode"), str):
            return quant["mode"]  # e.g. mlx "mxfp4"
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for source in (config, text_config):
        for key in ("torch_dtype", "dtype"):
            value = source.get(key)
            if isinstance(value, str) and value.lower() in _DTYPES:
                return _DTYPES[value.lower()]
    return None


def chat_template_of(path: Path) -> str | None:
    """The chat template: chat_template.jinja, tokenizer_config.json's chat_template, or chat_template.json."""
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(errors="replace")
    for file in ("tokenizer_config.json", "chat_template.json"):
        template = (_read_json(path / file) or {}).get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
            named = {item.get("name"): item.get("template") for item in template if isinstance(item, dict)}
            template = named.get("tool_use") or named.get("default") or next(iter(named.values()), None)
        if isinstance(template, str) and template:
            return template
    return None


def _weights_complete(path: Path) -> bool:
    index = _read_json(path / "model.safetensors.index.json")
    if not index or not isinstance(index.get("weight_map"), dict):
        return True
    return all((path / shard).is_file() for shard in set(index["weight_map"].values()))


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- finding and removing -------------------------------------------------------------------


def find_model(name: str, models: list[LocalModel] | None = None) -> LocalModel | None:
    """Exact name, then case-insensitive name, then a unique case-insensitive suffix that starts
    at a boundary (`Qwen2.5-0.5B-Instruct-4bit` for `mlx-community/Qwen2.5-0.5B-Instruct-4bit`)."""
    models = list_models() if models is None else models
    wanted = name.strip()
    lower = wanted.lower()
    exact = [m for m in models if m.name == wanted]
    if exact:
        return exact[0]  # names are unique: repo ids contain "/", directory names cannot
    hits = [m for m in models if m.name.lower() == lower]
    if not hits:
        hits = [
            m for m in models
            if lower and m.name.lower().endswith(lower) and m.name[-len(wanted) - 1] in _NAME_BOUNDARIES
        ]
    if len(hits) > 1:
        names = ", ".join(m.name for m in hits)
        raise AmbiguousModelName(f"model name {name!r} matches several models: {names}", hint="use the full name")
    return hits[0] if hits else None


def remove_model(name: str, *, allow_partial: bool = False,
                 stop_daemon: Optional[Callable[[Any], None]] = None) -> LocalModel:
    """Delete a listed model: an HF cache repo (every cached revision) or an imported directory.

    `name` is a model's full name or its directory; a path is accepted only if it is an imported model
    directory or an HF snapshot of a listed model. A partial name (see partial_matches) needs
    `allow_partial` and must pick one model. The model the running daemon serves is refused, unless
    `stop_daemon` is given: it is called with the daemon's state to stop it first (`models rm --force`).
    """
    if not name.strip():
        raise not_found(name)
    models = list_models()
    model = next((m for m in models if m.name == name.strip()), None) or _model_at_path(name, models)
    if model is None:
        model = _partial_match(name, models, allow_partial)
    serving = _serving_daemon(model)
    if serving is not None and stop_daemon is not None:
        stop_daemon(serving)
    _refuse_if_served(model)
    if model.source == "hf":
        _remove_from_hf_cache(model)
    else:
        _remove_imported(model.path)
    return model


def partial_matches(name: str, models: list[LocalModel]) -> list[LocalModel]:
    """Models whose name holds `name` (any case) starting at the beginning or after one of "/-_."."""
    pattern = re.compile(rf"(?:^|[{re.escape(_NAME_BOUNDARIES)}]){re.escape(name.strip())}", re.IGNORECASE)
    return [m for m in models if pattern.search(m.name)]


def _partial_match(name: str, models: list[LocalModel], allow_partial: bool) -> LocalModel:
    matches = partial_matches(name, models)
    if not matches:
        raise not_found(name)
    names = ", ".join(m.name for m in matches)
    if len(matches) > 1:
        raise AmbiguousModelName(f"{name!r} is not a model's full name; it matches {names}",
                                 hint="repeat with one full name")
    if not allow_partial:
        raise MlxClaudeError(f"{name!r} is not a model's full name; it matches {names}",
                             hint="repeat with the full name, or add --yes to remove that one")
    return matches[0]


def _serving_daemon(model: LocalModel):
    """The running daemon's state when it serves `model`, else None."""
    from mlxclaude.daemon.state import read_state

    state = read_state()
    return state if state is not None and _serves(state.model, state.model_path, model) else None


def _refuse_if_served(model: LocalModel) -> None:
    state = _serving_daemon(model)
    if state is not None:
        raise MlxClaudeError(f"{model.name} is the model the running daemon serves ({state.url})",
                             hint="stop the daemon first with `mlxclaude down`, or add --force to stop it "
                                  "and remove the model")


def _serves(served_name: str | None, served_path: str | None, model: LocalModel) -> bool:
    """Whether a daemon serving (name, path) uses `model`; for an HF model any revision counts, as
    removing it deletes them all."""
    if not served_path:
        return served_name == model.name
    if served_path in (model.name, model.repo_id):
        return True   # a repo id the daemon loaded from the HF cache itself
    root = model.path.parent.parent if model.source == "hf" else model.path
    served, root = Path(served_path).resolve(), root.resolve()
    return served == root or root in served.parents


def _model_at_path(text: str, models: list[LocalModel]) -> LocalModel | None:
    path = Path(text).expanduser()
    if not path.exists() and not path.is_symlink():
        return None
    resolved = path.resolve()
    for model in models:
        if model.path.resolve() == resolved:
            return model
    imported_root = paths.imported_models_dir().resolve()
    if path.absolute().parent.resolve() == imported_root and path.is_dir():
        return describe_model(path, name=path.name, source="imported")  # e.g. an import without config.json
    raise MlxClaudeError(
        f"refusing to remove {path}: it is not a model mlxclaude manages",
        hint=f"mlxclaude removes models from the Hugging Face cache ({paths.hf_hub_cache()}) "
        f"and from {paths.imported_models_dir()} only",
    )


def _remove_from_hf_cache(model: LocalModel) -> None:
    from huggingface_hub import scan_cache_dir

    cache = scan_cache_dir(paths.hf_hub_cache())
    hashes = [
        rev.commit_hash
        for repo in cache.repos
        if repo.repo_type == "model" and repo.repo_id == model.repo_id
        for rev in repo.revisions
    ]
    if hashes:
        cache.delete_revisions(*hashes).execute()


def _remove_imported(path: Path) -> None:
    root = paths.imported_models_dir().resolve()
    if path.absolute().parent.resolve() != root or path.name in ("", ".", ".."):
        raise MlxClaudeError(f"refusing to remove {path}: it is not inside {root}")
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)
