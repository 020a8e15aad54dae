"""Progress bars on stderr: the one download display (`models pull`, and the downloads `up`, `run` and
`restart` do in the foreground before the daemon starts).

models/hub.py counts; this draws. The bar shows the repo, bytes done of the total, speed and time left,
then the files done of the total.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

if TYPE_CHECKING:
    from rich.progress import Progress


def pull_with_progress(repo: str, revision: Optional[str] = None) -> Path:
    """hub.pull_model with the download display; Ctrl-C stops it (exit 130), keeping the finished files."""
    from mlxclaude.cli._output import note
    from mlxclaude.models.hub import pull_model

    try:
        with download_display() as display:
            return pull_model(repo, revision, display=display)
    except KeyboardInterrupt:
        note(f"interrupted: the files of {repo} downloaded so far are kept; the same command again fetches the rest")
        raise


@contextmanager
def download_display() -> Iterator["Progress"]:
    """A rich Progress on stderr, drawn while the block runs (and once more, complete, at its end)."""
    progress = _make_progress()
    with progress:
        yield progress


def _make_progress() -> "Progress":
    from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.text import Text

    from mlxclaude.cli._output import stderr_console

    class AmountColumn(ProgressColumn):
        def render(self, task):  # type: ignore[override]
            if task.fields.get("bytes"):
                return DownloadColumn().render(task)
            total = "?" if task.total is None else int(task.total)
            return Text(f"{int(task.completed)}/{total} files", style="progress.download")

    class SpeedColumn(ProgressColumn):
        def render(self, task):  # type: ignore[override]
            return TransferSpeedColumn().render(task) if task.fields.get("bytes") else Text("")

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        AmountColumn(),
        SpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
    )
