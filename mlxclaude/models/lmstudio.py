"""`models import lmstudio:PUBLISHER/REPO[/FILE.gguf]`: find a GGUF file in LM Studio's models folder.

LM Studio downloads into ``<models>/<publisher>/<repo>/<file>.gguf``, with ``<models>`` at
``~/.lmstudio/models`` (older versions: ``~/.cache/lm-studio/models``). A repo with one model file
needs no file name; vision projectors (``mmproj*.gguf``) are not model files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlxclaude.errors import MlxClaudeError

PREFIX = "lmstudio:"
SHOWN = 8


class LmStudioError(MlxClaudeError):
    """An LM Studio model that cannot be found."""


@dataclass(frozen=True)
class LmStudioModel:
    ref: str  # publisher/repo/file.gguf
    path: Path


def models_dirs() -> list[Path]:
    """LM Studio's models folders that exist, newest layout first."""
    home = Path.home()
    return [d for d in (home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models") if d.is_dir()]


def model_files(repo_dir: Path) -> list[Path]:
    return sorted(p for p in repo_dir.glob("*.gguf") if p.is_file() and not p.name.lower().startswith("mmproj"))


def list_repos(roots: list[Path]) -> list[str]:
    return sorted({f"{r.parent.name}/{r.name}" for root in roots for r in root.glob("*/*") if model_files(r)})


def find_model(ref: str, roots: list[Path] | None = None) -> LmStudioModel:
    """The GGUF file for ``ref`` (without the ``lmstudio:`` prefix)."""
    roots = models_dirs() if roots is None else roots
    parts = [p for p in ref.strip("/").split("/") if p]
    if not parts or len(parts) > 3 or any(p in (".", "..") for p in parts):
        raise LmStudioError(f"not an LM Studio model: {ref!r}",
                            hint="use lmstudio:PUBLISHER/REPO or lmstudio:PUBLISHER/REPO/FILE.gguf, "
                                 "e.g. lmstudio:lmstudio-community/Qwen2.5-Coder-7B-Instruct-GGUF")
    if not roots:
        raise LmStudioError("no LM Studio models folder (~/.lmstudio/models or ~/.cache/lm-studio/models)",
                            hint="download the model in LM Studio first, or pass the .gguf file's path")
    file = parts.pop() if parts[-1].lower().endswith(".gguf") else None
    if len(parts) == 1:  # a repo name alone: fine when one publisher has it
        candidates = [r for root in roots for r in root.glob(f"*/{parts[0]}") if r.is_dir()]
    elif len(parts) == 2:
        candidates = [root / parts[0] / parts[1] for root in roots if (root / parts[0] / parts[1]).is_dir()]
    else:
        candidates = []
    if len(candidates) != 1:
        repos = list_repos(roots)
        listed = ", ".join(repos[:SHOWN]) + (" …" if len(repos) > SHOWN else "")
        what = "is ambiguous" if candidates else "is not in"
        raise LmStudioError(f"lmstudio:{'/'.join(parts)} {what} {', '.join(str(r) for r in roots)}",
                            hint=f"models there: {listed}" if repos else "no GGUF models are there yet")
    repo = candidates[0]
    files = model_files(repo)
    if file is not None:
        path = repo / file
        if not path.is_file():
            raise LmStudioError(f"{repo} has no file {file}",
                                hint="files there: " + (", ".join(p.name for p in files) or "none"))
    elif len(files) == 1:
        path = files[0]
    else:
        spec = f"lmstudio:{repo.parent.name}/{repo.name}"
        raise LmStudioError(f"{spec} holds {len(files)} GGUF files; name one",
                            hint=", ".join(f"{spec}/{p.name}" for p in files[:SHOWN]) if files
                            else f"there is no .gguf file in {repo}")
    return LmStudioModel(f"{repo.parent.name}/{repo.name}/{path.name}", path)
