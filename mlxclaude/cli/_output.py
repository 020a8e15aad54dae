"""The CLI's one output layer: data goes to stdout, everything else to stderr.

stdout carries what a script may capture (tables, JSON, a path); progress, notes, hints, warnings and
errors go to stderr. Rich is imported only when a command asks for a console, so `--help`, `--version`
and `status` without a daemon stay as fast as Typer itself. Consoles are made per call: Rich reads
COLUMNS and the terminal when a console is made, and tests change them between commands.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:
    from rich.console import Console


def stdout_console(**options: Any) -> "Console":
    """A Rich console on stdout for data (tables, coloured log lines); no automatic highlighting."""
    from rich.console import Console

    return Console(highlight=False, **options)


def stderr_console(**options: Any) -> "Console":
    """A Rich console on stderr for progress (spinners) and coloured notes."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, **options)


def echo(text: object = "") -> None:
    """One line of data on stdout."""
    print(text, flush=True)


def print_json(data: Any, *, indent: Optional[int] = 2) -> None:
    """A JSON document on stdout (values JSON cannot hold are written as strings)."""
    import json

    print(json.dumps(data, indent=indent, default=str), flush=True)


def print_json_lines(lines: Iterable[str]) -> None:
    """JSON lines as they are, one per line, on stdout."""
    for line in lines:
        print(line, flush=True)


def note(message: str) -> None:
    """Progress and information: one line on stderr."""
    print(message, file=sys.stderr, flush=True)


def warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def hint(message: str) -> None:
    print(f"hint: {message}", file=sys.stderr, flush=True)


def error(message: str, hint_text: Optional[str] = None) -> None:
    """`error: …` and, when there is one, `hint: …` on stderr (the caller picks the exit code)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    if hint_text:
        hint(hint_text)


def elide_middle(text: str, width: int) -> str:
    """`text` in `width` characters: its start and (more of) its end around an ellipsis."""
    if len(text) <= width:
        return text
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head] + "\u2026" + text[len(text) - tail:]


def elide_end(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    cut = text[: width - 1].rstrip()
    return cut + "\u2026"
