"""Write a file so that readers see the old content or the new, never half of it; private directories."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

PRIVATE_DIR_MODE = 0o700


@contextlib.contextmanager
def atomic_target(path: Path, *, mode: int = 0o600, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file beside `path` for the caller to fill (for writers that take a file name); when the
    block succeeds it gets `mode` and is renamed over `path`, when it fails it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, raw: bytes, *, mode: int = 0o600) -> Path:
    """Write to a temp file beside `path` (fsync'd, chmod'ed), then rename it over `path`."""
    with atomic_target(path, mode=mode) as tmp, open(tmp, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) as a directory only its owner can enter; an existing one that
    others can read is tightened (it is one of ours: only call this on mlxclaude's own directories)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path
