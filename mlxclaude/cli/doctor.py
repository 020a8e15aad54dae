"""`mlxclaude doctor`: what works, what does not, and the fix for each."""

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command
from mlxclaude.cli._options import JsonOption

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def register(app: typer.Typer) -> None:
    app.command("doctor", cls=Command)(doctor)


def doctor(json_output: JsonOption = False) -> None:
    """Check what mlxclaude needs, with the fix for each problem.

    Python, MLX, memory, the model, the daemon and Claude Code; exits 1 if anything fails.
    """
    from mlxclaude.doctor import exit_code, run_checks

    checks = run_checks()
    code = exit_code(checks)
    if json_output:
        _output.print_json({"ok": code == 0, "checks": [check.to_dict() for check in checks]})
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        table.add_column("status", no_wrap=True)
        table.add_column("check", no_wrap=True, style="bold")
        table.add_column("detail")
        for check in checks:
            detail = Text(check.detail)
            if check.fix and check.status != "ok":
                detail.append("\nfix: ", style="bold").append(check.fix)
            table.add_row(Text(check.status, style=STYLES[check.status]), check.name, detail)
        _output.stdout_console().print(table)
        counts = {status: sum(check.status == status for check in checks) for status in ("warn", "fail")}
        summary = ", ".join(f"{n} {name}" for name, n in (("warning(s)", counts["warn"]),
                                                           ("failure(s)", counts["fail"])) if n)
        _output.note(summary or "all good")
    if code:
        raise typer.Exit(code)
