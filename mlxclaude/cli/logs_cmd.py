"""`mlxclaude logs`: the daemon's JSON-lines log, filtered and coloured (or passed through with --json)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

NO_LOGS = "no logs yet: start the daemon with `mlxclaude up`"


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they are written.")] = False,
    since: Annotated[Optional[str], typer.Option("--since", metavar="WHEN",
                                                 help="Only lines newer than 10m, 1h, 2d or an ISO time.")] = None,
    level: Annotated[Optional[str], typer.Option("--level", "-l", metavar="LEVEL",
                                                 help="Minimum level: info, warning or error.")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", metavar="KIND",
                                                      help="Only records of this kind: perf, cache, request or "
                                                           "daemon (repeatable).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the raw JSON lines (filtered).")] = False,
    lines: Annotated[Optional[int], typer.Option("--lines", "-n", metavar="N", min=0,
                                                 help="Show the last N lines; 0 shows all "
                                                      "(default: 50, or all with --since).")] = None,
) -> None:
    """Show the daemon's log: one line per request with tokens, TTFT, tok/s and cache hits."""
    from mlxclaude import logview, paths

    flt = logview.LogFilter(
        since=logview.parse_since(since) if since else None,
        level=logview.normalise_level(level) if level else None,
        kinds=logview.normalise_kinds(kind) if kind else None,
    )
    path = paths.daemon_log_file()
    if not path.is_file():
        print(NO_LOGS, file=sys.stderr)
        raise typer.Exit(1)
    last = lines if lines is not None else (0 if since else logview.DEFAULT_TAIL)
    entries, offset = logview.read_entries(path, flt, last=last or None)

    if json_output:
        _print_json(entries)
        if follow:
            for entry in logview.follow_entries(path, flt, offset=offset):
                _print_json([entry])
        return

    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)
    renderer = logview.LineRenderer()
    console.print(renderer.header())
    for line in renderer.render_all(entries):
        console.print(line)
    if follow:
        for entry in logview.follow_entries(path, flt, offset=offset):
            for line in renderer.render(entry):
                console.print(line)


def _print_json(entries: list) -> None:
    for entry in entries:
        if entry.is_json:
            print(entry.line, flush=True)
