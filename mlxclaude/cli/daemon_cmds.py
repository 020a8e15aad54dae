"""`mlxclaude up | down | status | restart`: thin commands over mlxclaude.daemon.manager.

Data (URL, model, pid; the status table or JSON) goes to stdout; the spinner and notes go to stderr.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

ModelOpt = typer.Option(None, "--model", "-m", help="Model directory or name (see `mlxclaude models list`); "
                                                  "default: the configured model.")
HostOpt = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1).")
PortOpt = typer.Option(None, "--port", "-p", help="Port to bind (default 8765; 0 picks a free one).")


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _start_with_spinner(call):
    """Run a manager call that reports progress, under a spinner on stderr."""
    console = _stderr()
    with console.status("starting daemon…") as spinner:
        return call(lambda message: spinner.update(message))


def _print_started(state: Any) -> None:
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]{state.url}[/bold]")
    out.print(f"model  {state.model}")
    out.print(f"pid    {state.pid}")


def up(
    model: Optional[str] = ModelOpt,
    host: Optional[str] = HostOpt,
    port: Optional[int] = PortOpt,
    foreground: bool = typer.Option(False, "--foreground", help="Run in this terminal (logs on stderr)."),
) -> None:
    """Start the background server (a no-op when it is already running)."""
    from mlxclaude.daemon import manager
    from mlxclaude.config.registry import ServerSettings

    from mlxclaude.cli.model_choice import with_default_model

    settings = with_default_model(ServerSettings.from_env(model=model, host=host, port=port))
    if foreground:
        # returns only when one is already running; otherwise this process becomes the daemon
        state = manager.start(settings, foreground=True, explicit_model=model is not None)
    else:
        state = _start_with_spinner(lambda report: manager.start(settings, on_progress=report,
                                                                 explicit_model=model is not None))
    if state.already_running:
        _stderr().print(f"already running (pid {state.pid})")
    _print_started(state)


def down() -> None:
    """Stop the background server (a no-op when it is not running)."""
    from mlxclaude.daemon import manager

    console = _stderr()
    with console.status("stopping…"):
        stopped = manager.stop()
    console.print("stopped" if stopped else "not running")


def _render_status(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    memory = info.get("memory") or {}
    rows = [
        ("state", info.get("state")),
        ("url", info.get("url")),
        ("model", info.get("model")),
        ("path", info.get("model_path")),
        ("context", info.get("context_length")),
        ("pid", info.get("pid")),
        ("uptime", _duration(info.get("uptime_s"))),
        ("requests", info.get("requests_served")),
        ("queued", info.get("queued")),
        ("memory", _memory(memory)),
        ("cache", _cache(info.get("cache"))),
        ("error", info.get("error")),
        ("log", info.get("log_path")),
    ]
    for name, value in rows:
        if value is not None and value != "":
            table.add_row(name, str(value))
    Console(highlight=False).print(table)


def _cache(facts: Optional[dict]) -> Optional[str]:
    if not facts:
        return None
    megabytes = (facts.get("bytes") or 0) / 2**20
    hit_rate = facts.get("hit_rate")
    rate = f", {hit_rate:.0%} of prompt tokens reused" if isinstance(hit_rate, (int, float)) else ""
    return f"{facts.get('entries', 0)} entries, {megabytes:.1f} MB{rate}"


def _duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _memory(memory: dict) -> Optional[str]:
    parts = []
    if memory.get("mlx_active_gb") is not None:
        parts.append(f"{memory['mlx_active_gb']:.2f} GB active (MLX)")
    if memory.get("mlx_peak_gb") is not None:
        parts.append(f"{memory['mlx_peak_gb']:.2f} GB peak")
    if memory.get("rss_mb") is not None:
        parts.append(f"{memory['rss_mb']:.0f} MB resident")
    return ", ".join(parts) or None


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the background server; exit code 3 when it is not running."""
    from mlxclaude.daemon import manager

    info = manager.status()
    if info is None:
        if as_json:
            typer.echo(json.dumps({"running": False}))
        else:
            _stderr().print("not running")
        raise typer.Exit(3)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
    else:
        _render_status(info)


def restart(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Switch to this model."),
    host: Optional[str] = HostOpt,
    port: Optional[int] = PortOpt,
) -> None:
    """Stop the background server and start it again (same model, host and port unless given)."""
    from mlxclaude.daemon import manager

    state = _start_with_spinner(lambda report: manager.restart(model=model, host=host, port=port,
                                                               on_progress=report))
    _print_started(state)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(restart)
