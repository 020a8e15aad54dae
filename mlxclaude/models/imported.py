"""Where `models import` puts what it builds: a named directory under the data dir, written atomically."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Callable

from mlxclaude import paths
from mlxclaude.errors import MlxClaudeError, UsageError

IMPORT_RECORD = "mlxclaude_import.json"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def destination(name: str, *, overwrite: bool) -> Path:
    if not _NAME_OK.match(name) or ".." in name:
        raise UsageError(f"invalid model name {name!r}",
                         hint="use letters, digits, '.', '_' and '-' (no slashes), e.g. --name smollm2-135m")
    dest = paths.imported_models_dir() / name
    if dest.exists() and not overwrite:
        raise MlxClaudeError(f"an imported model named {name!r} already exists at {dest}",
                             hint="pass --force to replace it, or --name to import under another name")
    return dest


def build_atomically(dest: Path, build: Callable[[Path], None], *, overwrite: bool) -> None:
    """Run ``build(tmp)`` in a sibling temp dir, then move it into place (replacing ``dest`` if asked)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        if dest.exists():
            if not overwrite:
                raise MlxClaudeError(f"an imported model named {dest.name!r} already exists at {dest}",
                                     hint="pass --force to replace it")
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
