"""`mlxclaude up | down | status | restart`: thin commands over mlxclaude.daemon.manager.

Data (URL, model, pid; the status table or JSON) goes to stdout; the spinner and notes go to stderr.
`status` is what scripts poll: with no daemon it reads the state file and exits 3, and at no time does
it import an HTTP client, TLS or Rich (tests/cli/test_startup_imports.py).
"""

from typing import Annotated, Any, Optional

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command
from mlxclaude.cli._options import (
    ForceOption,
    HostOption,
    JsonOption,
    ModelOption,
    PortOption,
    RestartHostOption,
    RestartModelOption,
    RestartPortOption,
)

NOT_RUNNING = 3


def register(app: typer.Typer) -> None:
    for command in (up, down, status, restart):
        app.command(cls=Command)(command)


def up(
    model: ModelOption = None,
    host: HostOption = None,
    port: PortOption = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run in this terminal (logs on stderr).")] = False,
    force: ForceOption = False,
) -> None:
    """Start the background server; a no-op when it is running.

    Without --model and with none configured, the obvious local model is used, or the one recommended
    for this machine is offered for download. A repo id not downloaded yet is downloaded first, here,
    with a progress bar. A model whose context cannot hold Claude Code's prompt is refused, unless --force.
    """
    from mlxclaude.cli._model_choice import prepare_model, with_default_model
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon import manager

    settings = with_default_model(ServerSettings.from_env(model=model, host=host, port=port))
    prepare_model(settings, explicit=model is not None, force=force, command="mlxclaude up")
    if foreground:
        # returns only when one is already running; otherwise this process becomes the daemon
        state = manager.start(settings, foreground=True, explicit_model=model is not None)
    else:
        state = _start_with_spinner(lambda report: manager.start(settings, on_progress=report,
                                                                 explicit_model=model is not None))
    if state.already_running:
        _output.note(f"already running (pid {state.pid})")
    _print_started(state)


def down() -> None:
    """Stop the background server; a no-op when it is not running."""
    from mlxclaude.daemon import manager

    console = _output.stderr_console()
    with console.status("stopping…"):
        stopped = manager.stop()
    console.print("stopped" if stopped else "not running")


def status(as_json: JsonOption = False) -> None:
    """Show the background server; exit code 3 when it is not running."""
    from mlxclaude.daemon import manager

    info = manager.status()
    if info is None:
        if as_json:
            _output.print_json({"running": False}, indent=None)
        else:
            _output.note("not running")
        raise typer.Exit(NOT_RUNNING)
    if as_json:
        _output.print_json(info)
    else:
        _render_status(info)


def restart(
    model: RestartModelOption = None,
    host: RestartHostOption = None,
    port: RestartPortOption = None,
    force: ForceOption = False,
) -> None:
    """Stop the background server and start it again.

    The model, host and port stay those of the server that was running unless given. A new --model is
    downloaded first if need be, and refused if its context cannot hold Claude Code's prompt, unless --force.
    """
    from mlxclaude.daemon import manager

    if model:
        from mlxclaude.cli._model_choice import prepare_model
        from mlxclaude.config.registry import ServerSettings

        prepare_model(ServerSettings.from_env(model=model), explicit=True, force=force, command="mlxclaude restart",
                      restarting=True)
    state = _start_with_spinner(lambda report: manager.restart(model=model, host=host, port=port,
                                                               on_progress=report))
    _print_started(state)


# -- rendering ------------------------------------------------------------------------------------


def _start_with_spinner(call):
    """Run a manager call that reports progress, under a spinner on stderr."""
    with _output.stderr_console().status("starting daemon…") as spinner:
        return call(lambda message: spinner.update(message))


def _print_started(state: Any) -> None:
    out = _output.stdout_console(soft_wrap=True)
    out.print(f"[bold]{state.url}[/bold]")
    out.print(f"model  {state.model or REMOTE_ONLY}")
    out.print(f"pid    {state.pid}")


REMOTE_ONLY = "none (every route goes to a remote backend)"
MODEL_COLUMN = 32


def _render_status(info: dict) -> None:
    """`label  value` lines, labels aligned, nothing padded after the value (piped output has no trailing
    spaces)."""
    from rich.text import Text

    table: list[tuple[str, Any]] = []
    memory = info.get("memory") or {}
    rows = [
        ("state", info.get("state")),
        ("url", info.get("url")),
        ("model", info.get("model") or (REMOTE_ONLY if not info.get("model_path") and info.get("backends") else None)),
        ("path", info.get("model_path")),
        ("context", info.get("context_length")),
        ("pid", info.get("pid")),
        ("uptime", _duration(info.get("uptime_s"))),
        ("requests", info.get("requests_served")),
        ("queued", info.get("queued")),
        ("batch", _batch(info.get("batch"))),
        ("memory", _memory(memory)),
        ("cache", _cache(info.get("cache"))),
        ("error", info.get("error")),
        ("log", info.get("log_path")),
    ]
    for name, value in rows:
        if value is not None and value != "":
            table.append((name, str(value)))
    from mlxclaude.cli._inflight import in_flight_lines

    for index, line in enumerate(in_flight_lines(info.get("in_flight"))):
        table.append(("in flight" if index == 0 else "", line))
    table.extend(routing_rows(info))
    width = max(len(name) for name, _ in table)
    console = _output.stdout_console()
    room = max(20, console.width - width - 2)
    for name, value in table:  # a long value wraps under itself, never past the terminal's width
        parts = (value if isinstance(value, Text) else Text(value)).wrap(console, room)
        for index, part in enumerate(parts):
            line = Text(f"{name if index == 0 else '':<{width}}  ", style="bold")
            line.append_text(part)
            line.rstrip()
            console.print(line, soft_wrap=True)


# -- backends and routes (config.toml's [backends], [routes], [fallbacks]) ------------------------

STATE_STYLES = {"ok": "green", "loaded": "green", "loading": "yellow", "failing": "yellow", "unloaded": "yellow",
                "failed": "red", "cooling down": "red"}


def routing_rows(info: dict) -> list:
    """(label, rich Text) rows for the status table: one per backend, then the routes and the fallbacks; none
    when the daemon serves only the built-in `local` backend (or is too old to say)."""
    backends = [entry for entry in info.get("backends") or [] if isinstance(entry, dict)]
    if not backends or (len(backends) == 1 and backends[0].get("name") == "local"):
        return []
    from rich.text import Text

    widths = [max(len(str(entry.get(key) or "")) for entry in backends) for key in ("name", "kind")]
    # the states line up, unless a very long model id would push every line past the terminal
    widths.append(min(MODEL_COLUMN, max(len(str(entry.get("model") or entry.get("url") or "-")) for entry in backends)))
    rows = [("backends" if index == 0 else "", backend_line(entry, widths)) for index, entry in enumerate(backends)]
    routes = routes_text(info.get("routes"))
    if routes:
        rows.append(("routes", Text(routes)))
    fallbacks = fallbacks_text(info.get("fallbacks"))
    if fallbacks:
        rows.append(("fallbacks", Text(fallbacks)))
    return rows


def backend_line(entry: dict, widths: Any = (0, 0)):
    """`gpu    openai  Qwen/Qwen3-Coder…  cooling down 13s, 2 failures (connection refused)` with the state
    coloured: green when it serves, yellow when it is on its way or idle, red when it does not."""
    import math

    from rich.text import Text

    name, kind = str(entry.get("name") or "?"), str(entry.get("kind") or "?")
    model = str(entry.get("model") or entry.get("url") or "-")
    line = Text(f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {model:<{widths[2] if len(widths) > 2 else 0}}  ")
    state = str(entry.get("state") or "?")
    shown = state
    left = entry.get("cooldown_left_s")
    if state == "cooling down" and isinstance(left, (int, float)):
        shown += f" {_duration(math.ceil(left))}"
    line.append(shown, style=STATE_STYLES.get(state) or None)
    extras = []
    failures = entry.get("failures")
    if isinstance(failures, int) and failures and state != "ok":
        extras.append(f"{failures} failure{'s' if failures != 1 else ''}")
    in_flight = entry.get("in_flight")
    if isinstance(in_flight, int) and in_flight:
        extras.append(f"{in_flight} in flight")
    if extras:
        line.append(", " + ", ".join(extras))
    error = entry.get("last_error")
    if error and state not in ("ok", "loaded"):
        line.append(f" ({error})", style="dim")
    return line


def routes_text(routes: Any) -> str:
    """`*haiku* → small, * → local`."""
    pairs = [f"{entry.get('pattern')} → {entry.get('backend')}" for entry in routes or [] if isinstance(entry, dict)]
    return ", ".join(pairs)


def fallbacks_text(fallbacks: Any) -> str:
    """`gpu → local → small` for each backend with fallbacks, in the order they are tried."""
    if not isinstance(fallbacks, dict):
        return ""
    return ", ".join(" → ".join([str(name), *map(str, chain)]) for name, chain in fallbacks.items()
                     if isinstance(chain, list) and chain)


def _cache(facts: Optional[dict]) -> Optional[str]:
    if not facts:
        return None
    from mlxclaude.config.units import format_bytes

    hit_rate = facts.get("hit_rate")
    rate = f", {hit_rate:.0%} of prompt tokens reused" if isinstance(hit_rate, (int, float)) else ""
    disk = facts.get("disk") if isinstance(facts.get("disk"), dict) else {}
    corrupt = disk.get("corrupt") or 0
    moved = f", {corrupt} unreadable file{'s' if corrupt != 1 else ''} moved to {disk.get('directory')}/corrupt" \
        if corrupt else ""
    entries = facts.get("entries", 0)
    noun = "entry" if entries == 1 else "entries"
    return f"{entries} {noun}, {format_bytes(facts.get('bytes') or 0)}{rate}{moved}"


def _batch(facts: Optional[dict]) -> Optional[str]:
    """`batched, 2 of 8 streams, 1 waiting` (each stream is in the in-flight lines) or `one at a time`."""
    if not facts:
        return None
    text = str(facts.get("mode", ""))
    if facts.get("mode") == "batched":
        text += f", {facts.get('active', 0)} of {facts.get('max_batch')} streams"
        if facts.get("waiting"):
            text += f", {facts['waiting']} waiting"
    spec = facts.get("speculative") if isinstance(facts.get("speculative"), dict) else {}
    if spec.get("mode") not in (None, "off"):
        text += f"; speculative {spec['mode']}"
        if spec.get("asked"):
            text += f" ({spec['asked']} unavailable)"
        if spec.get("drafted"):
            text += f": {spec.get('accepted', 0)} of {spec['drafted']} drafted tokens accepted"
    return text


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
