"""The one model resolver: what a user typed after --model (or in config) → a ResolvedModel.

In order: an existing directory; a name from `mlxclaude models list` (see catalog.find_model); a
Hugging Face repo id (org/name), downloaded when `pull` is true (quietly: that is the daemon's loader,
for `mlxclaude serve ORG/NAME`) and otherwise returned without a path. `up`, `run` and `restart` download
such a repo in the CLI first, with a progress bar (cli/_model_choice.prepare_model), so the daemon they
start always gets a directory. Anything else is ModelNotFound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from mlxclaude.errors import MlxClaudeError, ModelNotFound

Source = Literal["directory", "listed", "hub"]


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what to call it: a listed model's name, the repo id, or the directory's own name
    path: Optional[Path]  # the model directory (absolute); None for a repo id not downloaded yet (pull=False)
    source: Source  # "directory": a path was given; "listed": a name from `models list`; "hub": a repo id

    @property
    def target(self) -> str:
        """What a loader is handed: the directory, or the repo id it still has to download."""
        return str(self.path) if self.path is not None else self.name

    @property
    def argument(self) -> str:
        """How to name this model again in --model: the directory for a path, else its name."""
        return self.target if self.source == "directory" else self.name

    def local_path(self) -> Path:
        """The directory; a repo id that is not downloaded yet is ModelNotFound (with the pull command)."""
        if self.path is None:
            raise not_found(self.name)
        return self.path


def is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(part and not part.startswith(".") for part in parts) and not text.startswith(("~", "/"))


def resolve(text: str, *, pull: bool) -> ResolvedModel:
    """The model `text` names. With pull=True a repo id that is not in the cache yet is downloaded;
    with pull=False it comes back with path None (see ResolvedModel.local_path)."""
    if not text or not text.strip():
        raise not_found(text)
    local = Path(text).expanduser()
    if local.is_dir():
        path = local.resolve()
        if not (path / "config.json").is_file():  # at once, not after the daemon tried for seconds
            raise MlxClaudeError(f"{path} holds no model: it has no config.json",
                                 hint="point at an mlx-lm model directory or a name from `mlxclaude models list`, "
                                      "or import a GGUF file: mlxclaude models import FILE.gguf")
        return ResolvedModel(name=path.name, path=path, source="directory")
    from mlxclaude.models.catalog import find_model

    listed = find_model(text)  # AmbiguousModelName when a short name fits several models
    if listed is not None:
        return ResolvedModel(name=listed.name, path=Path(listed.path), source="listed")
    if not is_repo_id(text):
        raise not_found(text)
    if not pull:
        return ResolvedModel(name=text, path=None, source="hub")
    from mlxclaude.models.hub import pull_model

    return ResolvedModel(name=text, path=pull_model(text), source="hub")


def _looks_like_a_path(text: str) -> bool:
    return text.startswith(("/", "~", ".")) or (os.sep in text and not is_repo_id(text))


def not_found(text: str) -> ModelNotFound:
    if _looks_like_a_path(text):
        return ModelNotFound(f"model directory not found: {text}",
                             hint="pass a model directory, a name from `mlxclaude models list`, or a repo id (org/name)")
    pull = f"mlxclaude models pull {text}" if is_repo_id(text) else "mlxclaude models pull REPO"
    close = _close_names(text)
    guess = f"did you mean {' or '.join(repr(name) for name in close)}? " if close else ""
    return ModelNotFound(f"model not found: {text}",
                         hint=f"{guess}see `mlxclaude models list`, or download it with `{pull}`")


def _close_names(text: str) -> list[str]:
    """Models on this machine whose name (or its last part) is close to `text`, closest first: a typo's likely
    meaning."""
    import difflib

    from mlxclaude.models.catalog import list_models

    try:
        names = [model.name for model in list_models()]
    except Exception:  # a broken cache never hides the error being reported
        return []
    wanted = text.lower()

    def closeness(name: str) -> float:
        return max(difflib.SequenceMatcher(None, wanted, candidate).ratio()
                   for candidate in (name.lower(), name.rsplit("/", 1)[-1].lower()))

    scored = sorted(((closeness(name), name) for name in names), reverse=True)
    return [name for score, name in scored if score >= 0.75][:2]
