"""Turn what a user typed after --model into a model directory and a display name."""

from __future__ import annotations

from pathlib import Path

from mlxclaude.errors import ModelNotFound


def resolve_for_serving(text: str, *, allow_download: bool = True) -> tuple[Path, str]:
    """A directory, a name from `models list`, or a Hugging Face repo id (pulled when allowed)."""
    local = Path(text).expanduser()
    if local.is_dir():
        return local, local.name
    from mlxclaude.models.catalog import find_model

    known = find_model(text)
    if known is not None:
        return Path(known.path), known.name
    from mlxclaude.engine.loader import is_repo_id

    if is_repo_id(text) and allow_download:
        from mlxclaude.models.hub import pull_model

        return pull_model(text), text
    raise ModelNotFound(f"model not found: {text}",
                        hint="see `mlxclaude models list`, or `mlxclaude models pull REPO`")
