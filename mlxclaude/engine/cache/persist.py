"""System+tools prefix snapshots on disk, so the first turn after `mlxclaude up` is warm.

One `.safetensors` file per prefix, written with mlx-lm's `save_prompt_cache`. Its metadata carries a
stamp (model path, a hash of config.json and the weight files' names and sizes, the mlx-lm version,
the file format) and the prefix's token ids. Files whose stamp differs from the loaded model's are
ignored (another model, other weights, another mlx-lm); the oldest files beyond `max_files` are removed;
unreadable ones (truncated, foreign) are moved into corrupt/, logged once and counted.
Writes go through a background thread (the arrays are evaluated before they are handed over). The
files hold the user's prompts: they are 0600 in a 0700 directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import struct
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

from mlxclaude.atomic import atomic_target, private_dir
from mlxclaude.logs import log_event

FORMAT = 1
SUFFIX = ".safetensors"
CORRUPT_DIR = "corrupt"


def model_stamp(model_path: str | Path) -> dict[str, Any]:
    path = Path(model_path)
    digest = hashlib.sha256()
    config = path / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}\n".encode())
    try:
        from mlx_lm import __version__ as mlx_lm_version
    except ImportError:  # pragma: no cover
        mlx_lm_version = "unknown"
    return {"format": FORMAT, "model_path": str(path.resolve()), "model_hash": digest.hexdigest()[:16],
            "mlx_lm": mlx_lm_version}


def stamp_id(stamp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]


def tokens_id(tokens: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest()[:16]


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header's __metadata__, without loading any array."""
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        if size > 256 * 1024**2:
            raise ValueError("header too large")
        header = json.loads(handle.read(size))
    return header.get("__metadata__") or {}


def _user_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """save_prompt_cache flattens [user metadata, classes, scalars]: user keys come back as "0.<key>"."""
    return {key[2:]: value for key, value in metadata.items() if key.startswith("0.")}


class DiskPrefixes:
    def __init__(self, directory: Path, stamp: dict[str, Any], *, keep: int = 4, max_files: int = 8) -> None:
        self.directory = Path(directory)
        self.stamp = stamp
        self.stamp_json = json.dumps(stamp, sort_keys=True)
        self.keep = keep
        self.max_files = max_files
        self.saved = 0
        self.loaded = 0
        self.corrupt = 0  # unreadable files found at start, moved into corrupt/
        self.errors: list[str] = []
        self._queue: "queue.Queue[Optional[tuple[list[int], list[Any]]]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None

    def path_for(self, tokens: Sequence[int]) -> Path:
        return self.directory / f"{stamp_id(self.stamp)}-{tokens_id(tokens)}{SUFFIX}"

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        files = [path for path in self.directory.iterdir() if path.suffix == SUFFIX and not path.name.startswith(".")]
        return sorted(files, key=lambda path: path.stat().st_mtime, reverse=True)

    def load(self) -> list[tuple[list[int], list[Any]]]:
        """The most recent `keep` prefixes saved for this model (newest first); stale stamps are skipped."""
        from mlx_lm.models.cache import load_prompt_cache

        found: list[tuple[list[int], list[Any]]] = []
        for path in self._files():
            if len(found) >= self.keep:
                break
            try:
                metadata = _user_metadata(read_metadata(path))
                if metadata.get("mlxclaude_stamp") != self.stamp_json:
                    continue
                tokens = json.loads(metadata["tokens"])
                cache = load_prompt_cache(str(path))
            except Exception as exc:  # a truncated or foreign file: moved aside, so it is reported once
                self.errors.append(f"{path.name}: {exc}")
                self._move_aside(path, exc)
                continue
            found.append((tokens, cache))
        self.loaded = len(found)
        return found

    def _move_aside(self, path: Path, exc: Exception) -> None:
        aside = self.directory / CORRUPT_DIR
        try:
            private_dir(aside)
            os.replace(path, aside / path.name)
        except OSError:
            aside = path.parent
        self.corrupt += 1
        log_event("prompt_cache_file_corrupt", level="warning", kind="cache", file=path.name,
                  moved_to=str(aside), error=str(exc)[:300])

    def save_async(self, tokens: Sequence[int], cache: list[Any]) -> None:
        """Queue a write (the cache must be evaluated already: the writer thread must not compute)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="mlxclaude-cache-writer", daemon=True)
            self._thread.start()
        self._queue.put((list(tokens), cache))

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self.save(*item)
            except Exception as exc:
                self.errors.append(repr(exc))
            finally:
                self._queue.task_done()

    def save(self, tokens: list[int], cache: list[Any]) -> Path:
        from mlx_lm.models.cache import save_prompt_cache

        private_dir(self.directory)
        target = self.path_for(tokens)
        if target.exists():
            os.utime(target)
            return target
        metadata = {"mlxclaude_stamp": self.stamp_json, "tokens": json.dumps(tokens)}
        with atomic_target(target, mode=0o600, suffix=SUFFIX) as temp:
            save_prompt_cache(str(temp), cache, metadata)
        self.saved += 1
        self._prune()
        return target

    def _prune(self) -> None:
        for path in self._files()[self.max_files:]:
            try:
                path.unlink()
            except OSError:
                pass
