"""`mlxclaude logs`: the daemon's JSON-lines log, filtered and coloured (or passed through with --json)."""

from typing import Annotated, Optional

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command
from mlxclaude.cli._options import JsonOption

NO_LOGS = "no logs yet: start the daemon with `mlxclaude up`"


def register(app: typer.Typer) -> None:
    app.command("logs", cls=Command)(logs)


def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they are written.")] = False,
    since: Annotated[Optional[str], typer.Option("--since", metavar="WHEN",
                                                 help="Only lines newer than 10m, 1h, 2d or an ISO time.")] = None,
    level: Annotated[Optional[str], typer.Option("--level", "-l", metavar="LEVEL",
                                                 help="Minimum level: info, warning or error.")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", "-k", metavar="KIND",
                                                      help="Only records of this kind: perf, cache, request or "
                                                           "daemon (repeatable).")] = None,
    json_output: JsonOption = False,
    lines: Annotated[Optional[int], typer.Option("--lines", "-n", metavar="N", min=0,
                                                 show_default="50, or all with --since",
                                                 help="Show the last N lines; 0 shows all.")] = None,
) -> None:
    """Show the daemon's log, one coloured line per request.

    Each line has the tokens (prompt, cached, new), TTFT, tok/s and the cache hit or miss; a long prompt
    adds a prefill line every few seconds. Columns fit the terminal (COLUMNS); piped, every column is
    shown, one line per record. With --json the log's own JSON lines are printed as they are (filtered).
    """
    from mlxclaude import paths
    from mlxclaude.cli import _logview as logview
    from mlxclaude.cli._logrows import LineRenderer

    flt = logview.LogFilter(
        since=logview.parse_since(since) if since else None,
        level=logview.normalise_level(level) if level else None,
        kinds=logview.normalise_kinds(kind) if kind else None,
    )
    path = paths.daemon_log_file()
    if not path.is_file():
        _output.note(NO_LOGS)
        raise typer.Exit(1)
    last = lines if lines is not None else (0 if since else logview.DEFAULT_TAIL)
    entries, offset = logview.read_entries(path, flt, last=last or None)

    if json_output:
        _output.print_json_lines(entry.line for entry in entries if entry.is_json)
        if follow:
            for entry in logview.follow_entries(path, flt, offset=offset):
                if entry.is_json:
                    _output.print_json_lines([entry.line])
        return

    console = _output.stdout_console(soft_wrap=True)
    renderer = LineRenderer(_terminal_width(console))
    console.print(renderer.header())
    for line in renderer.render_all(entries):
        console.print(line)
    if follow:
        for entry in logview.follow_entries(path, flt, offset=offset):
            for line in renderer.render(entry):
                console.print(line)


def _terminal_width(console) -> Optional[int]:
    """The width to fit: the terminal's, or COLUMNS when set; None (every column, one line each) into a pipe."""
    import os

    return console.width if console.is_terminal or os.environ.get("COLUMNS") else None
