"""Pull MLX models from the Hugging Face hub into the standard Hugging Face cache.

huggingface_hub does the work (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, locks, retries). Two
things are read from the environment at call time and passed explicitly, because huggingface_hub
reads them once, at import: the endpoint (HF_ENDPOINT) and the cache directory (HF_HUB_CACHE /
HF_HOME, via mlxclaude.paths). The token is left to huggingface_hub, which reads HF_TOKEN (then
the `hf auth login` file) on every request.

Resuming: within one pull, huggingface_hub retries a cut connection from the byte it got to
(HTTP Range). Across pulls it keeps every finished file, so running the pull again fetches only
what is missing; a file that was half-way is fetched again from its start (huggingface_hub 1.x/2.x
download into a per-process temporary file, `blobs/<etag>.<random>.incomplete`, and delete it on
failure). Ctrl-C (KeyboardInterrupt in the calling thread) stops every file's download at its next
chunk, which removes its temporary file, and is raised again: the cache then holds only finished files.

Drawing is the caller's: `display` is an object with rich.progress.Progress's `add_task` and `update`
(cli/_progress.py passes one); without it (the daemon) nothing is drawn.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from mlxclaude import __version__, paths
from mlxclaude.errors import UsageError
from mlxclaude.models.hub_errors import OFFLINE_WAYS, HubUnreachable, NotAnMlxModel, hub_error

DEFAULT_ENDPOINT = "https://huggingface.co"
# bytes per read and progress update (huggingface_hub's own is 10 MiB: on a slow link the bar would stand
# still and Ctrl-C would wait for the chunk in flight)
CHUNK_BYTES = 1024 * 1024
CANCEL_GRACE = 5.0  # seconds Ctrl-C waits for the downloads in flight to stop and remove their temporary files

# What mlx-lm needs from a repo: the same patterns as mlx_lm.utils.DEFAULT_ALLOW_PATTERNS (so
# mlx-lm's own offline completeness check agrees with what we fetched; *.py carries custom
# tokenizer code) plus "*.model" (sentencepiece files such as spiece.model). Weights are only
# "model*.safetensors" at the root: mlx-lm loads nothing else, and this skips duplicates such as
# consolidated.safetensors or original/*.
ALLOW_PATTERNS: tuple[str, ...] = (
    "*.json",
    "model*.safetensors",
    "*.py",
    "tokenizer.model",
    "*.model",
    "*.tiktoken",
    "tiktoken.model",
    "*.txt",
    "*.jsonl",
    "*.jinja",
)

_TRUE = {"1", "true", "yes", "on"}


class _Cancelled(Exception):
    """Raised inside huggingface_hub's download threads, at their next chunk, once the pull is interrupted."""


class DownloadDisplay(Protocol):
    """Where a pull draws its bars: the part of rich.progress.Progress it uses. Tasks get a `bytes` field
    (True for the byte bar, False for the file count)."""

    def add_task(self, description: str, *, total: Optional[float], completed: float, visible: bool,
                 **fields: Any) -> Any: ...

    def update(self, task_id: Any, *, completed: Optional[float] = None, total: Optional[float] = None) -> None: ...


def split_repo_revision(text: str) -> tuple[str, str | None]:
    """`org/name@rev` -> ("org/name", "rev"); `org/name` -> ("org/name", None)."""
    value = text.strip()
    repo, sep, revision = value.partition("@")
    parts = repo.split("/")
    valid = 1 <= len(parts) <= 2 and all(part and not part.startswith((".", "-")) for part in parts)
    if not valid or (sep and not revision) or any(ch.isspace() for ch in value):
        raise UsageError(f"not a Hugging Face model repo: {text!r}", hint="use ORG/NAME or ORG/NAME@REVISION")
    return repo, (revision or None)


def hub_endpoint() -> str:
    """HF_ENDPOINT as set now (huggingface_hub's own constant is frozen at import time)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT or DEFAULT_ENDPOINT).rstrip("/")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers at all now (any HTTP status counts): a download is worth offering."""
    if hub_offline():
        return False
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(hub_endpoint(), method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False
    return True


def hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().lower() in _TRUE or constants.is_offline_mode()


def check_repo_files(repo: str, filenames: list[str]) -> None:
    """Refuse a repo mlx-lm cannot load: GGUF only, PyTorch .bin only, no weights, no config.json."""
    root = [name for name in filenames if "/" not in name]
    has_weights = any(fnmatch.fnmatch(name, "model*.safetensors") for name in root)
    if has_weights and "config.json" in root:
        return
    gguf = [name for name in filenames if name.lower().endswith(".gguf")]
    torch = [name for name in filenames if name.endswith((".bin", ".pt", ".pth"))]
    if not has_weights and gguf:
        example = min(gguf, key=len)
        raise NotAnMlxModel(
            f"{repo} holds GGUF files, not MLX weights",
            hint=f"download one (`hf download {repo} {example}`) and run `mlxclaude models import FILE.gguf`, "
            "or pick an mlx-community/... repo",
        )
    if not has_weights and torch:
        raise NotAnMlxModel(
            f"{repo} holds PyTorch .bin weights, not safetensors",
            hint=f"download it (`hf download {repo} --local-dir DIR`) and convert it with "
            "`mlxclaude models import DIR`, or pick an mlx-community/... repo",
        )
    if not has_weights:
        raise NotAnMlxModel(f"{repo} has no model*.safetensors weights", hint="pick an mlx-community/... repo")
    raise NotAnMlxModel(f"{repo} has no config.json", hint="pick an mlx-community/... repo")


def pull_model(repo: str, revision: str | None = None, *, display: Optional[DownloadDisplay] = None) -> Path:
    """Download REPO (ORG/NAME or ORG/NAME@REV) into the HF cache; return its snapshot directory. `display`
    draws the progress (none by default); Ctrl-C leaves only finished files behind (see the module doc)."""
    repo_id, embedded = split_repo_revision(repo)
    if revision and embedded and revision != embedded:
        raise UsageError(f"two revisions given for {repo_id}: {embedded} and {revision}")
    revision = revision or embedded
    endpoint = hub_endpoint()
    if hub_offline():
        raise HubUnreachable(
            "cannot reach the Hugging Face hub (HF_HUB_OFFLINE is set)",
            hint="unset HF_HUB_OFFLINE to download, or " + OFFLINE_WAYS,
        )

    from huggingface_hub import HfApi, snapshot_download

    try:
        api = HfApi(endpoint=endpoint, library_name="mlxclaude", library_version=__version__)
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        raise hub_error(exc, repo_id, revision, endpoint) from exc
    check_repo_files(repo_id, [sibling.rfilename for sibling in info.siblings or []])

    from huggingface_hub import constants
    from huggingface_hub.utils import are_progress_bars_disabled

    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)  # read at each download
    cancelled = threading.Event()
    shown = None if are_progress_bars_disabled() else display
    tqdm_class = _tqdm_class(repo_id, shown, cancelled)

    def download() -> str:
        return snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=paths.hf_hub_cache(),
            endpoint=endpoint,
            allow_patterns=list(ALLOW_PATTERNS),
            tqdm_class=tqdm_class,
            library_name="mlxclaude",
            library_version=__version__,
        )

    try:
        folder = _interruptible(download, cancelled)
    except Exception as exc:
        raise hub_error(exc, repo_id, revision, endpoint, downloading=True) from exc
    return Path(folder)


def _interruptible(download: Callable[[], str], cancelled: threading.Event) -> str:
    """Run `download` in a thread, so that Ctrl-C reaches this one at once. huggingface_hub downloads in a
    thread pool that waits for every file in flight before it raises; setting `cancelled` makes each of
    them stop at its next chunk (and delete its temporary file)."""
    if threading.current_thread() is not threading.main_thread():
        return download()  # no KeyboardInterrupt here (the daemon's loader thread)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["folder"] = download()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="mlxclaude-pull", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        cancelled.set()
        thread.join(CANCEL_GRACE)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["folder"]


def _tqdm_class(repo: str, display: Optional[DownloadDisplay], cancelled: threading.Event) -> type:
    """The `tqdm_class` snapshot_download makes its bars from: it counts as tqdm does, forwards to `display`
    (when there is one) and stops the download once `cancelled` is set.

    snapshot_download makes three bars from it: bytes written (shown, labelled with the repo), a files
    count (shown), and bytes received, which for plain HTTP repeats the first (hidden).
    """
    from tqdm.std import tqdm as std_tqdm

    class DisplayTqdm(std_tqdm):
        monitor_interval = 0  # no tqdm monitor thread

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["gui"] = True  # tqdm keeps counting but does not print
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)
            self._task_id = None
            if display is None:
                return
            is_bytes = self.unit == "B"
            hidden = (self.desc or "").startswith("Downloading bytes")
            self._task_id = display.add_task(
                repo if is_bytes else "files",
                total=self.total or None,
                completed=self.n,
                visible=not hidden,
                bytes=is_bytes,
            )

        def update(self, n: float | None = 1) -> bool | None:
            if cancelled.is_set():
                raise _Cancelled("download interrupted")
            shown = super().update(n)
            self.display()  # every count reaches the display (tqdm would skip updates 0.1 s apart)
            return shown

        def display(self, *args: Any, **kwargs: Any) -> None:
            if display is not None and getattr(self, "_task_id", None) is not None:
                display.update(self._task_id, completed=self.n, total=self.total or None)

        def clear(self, *args: Any, **kwargs: Any) -> None:
            pass

        def close(self) -> None:
            if not self.disable:
                self.display()
            super().close()

    return DisplayTqdm
