"""Start, stop, inspect and restart the background daemon.

start() spawns `python -m mlxclaude.daemon.serve` detached and waits until /health says ok; it is
idempotent, and an exclusive lock makes two concurrent starts yield one daemon. stop() escalates
HTTP shutdown → SIGTERM → SIGKILL, signalling only a pid verified to run our daemon module.

The daemon is always handed a model directory: a repo id not downloaded yet is pulled here first (the CLI
pulls it before calling start, with its progress bar), so the start timeout never runs while bytes move.
A start that fails says what the daemon said: its last error-level log event (message and hint), else
the `error:` / `hint:` lines it printed, else the last lines of its output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from mlxclaude import paths
from mlxclaude.daemon import client
from mlxclaude.daemon.routes import needs_local_model
from mlxclaude.daemon.start_errors import died_error, last_logged_error, load_failed_error, stderr_log_file
from mlxclaude.daemon.state import (
    DAEMON_MODULE,
    DaemonState,
    is_our_daemon,
    last_model,
    load_state_file,
    pid_alive,
    read_state,
    remove_state,
)
from mlxclaude.errors import MlxClaudeError
from mlxclaude.logs import open_private

if TYPE_CHECKING:
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.models.resolve import ResolvedModel

START_TIMEOUT = 600.0  # a large model can take minutes to load
STOP_TIMEOUT = 15.0  # the HTTP shutdown drains requests (5 s) and stops the engine thread (5 s)
TERM_TIMEOUT = 5.0
POLL = 0.1

Progress = Callable[[str], None]


PORT_HINT = "stop what is using it, or pick another port: mlxclaude config set port N (or up --port N)"


def lock_file() -> Path:
    return paths.state_dir() / "daemon.lock"


# -- model and port checks -----------------------------------------------------------------


def resolve_model(name: Optional[str]) -> ResolvedModel:
    """The model to start with (see mlxclaude.models.resolve; a repo id not downloaded yet comes back
    without a path, and _start pulls it before spawning the daemon)."""
    if not name:
        raise MlxClaudeError("no model configured",
                             hint="mlxclaude up --model PATH_OR_NAME, see `mlxclaude models list`, or route every "
                                  "model to a remote backend in config.toml (README: Routes and remote engines)")
    from mlxclaude.models.resolve import resolve

    return resolve(name, pull=False)


def auth_token(settings: ServerSettings) -> Optional[str]:
    """The configured token, else the one generated once for this user (the daemon always checks one)."""
    from mlxclaude.config.token import resolve_auth_token

    return resolve_auth_token(settings)


def same_model(running: DaemonState, model_path: str) -> bool:
    if running.model_path is None:
        return True
    return os.path.realpath(running.model_path) == os.path.realpath(model_path)


def check_port_free(host: str, port: int) -> None:
    """Fail before spawning anything when something else listens on the port."""
    if port == 0:
        return
    import socket  # here, not at the top: `mlxclaude status` imports this module and binds nothing

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MlxClaudeError(f"port {port} is already in use on {host}",
                                 hint=PORT_HINT) from None
        raise MlxClaudeError(f"cannot bind {host}:{port}: {exc.strerror or exc}",
                             hint="mlxclaude config set host 127.0.0.1, or " + PORT_HINT) from None


# -- the start lock ------------------------------------------------------------------------


@contextlib.contextmanager
def start_lock(timeout: float) -> Iterator[None]:
    """One `up` at a time: an exclusive flock held for the whole start (released if we die)."""
    import fcntl

    path = lock_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MlxClaudeError("another `mlxclaude up` is still starting the daemon",
                                         hint="wait for it, or check `mlxclaude status`") from None
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)  # closing drops the lock


# -- spawning ------------------------------------------------------------------------------


def child_env(settings: ServerSettings) -> dict[str, str]:
    """The environment carries every setting (the token never goes on the command line)."""
    env = dict(os.environ)
    for spec in fields(settings):
        key = f"MLXCLAUDE_{spec.name.upper()}"
        value = getattr(settings, spec.name)
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    home = env.get("MLXCLAUDE_HOME")
    if home:
        env["MLXCLAUDE_HOME"] = str(Path(home).expanduser().resolve())
    # the daemon imports this very copy of mlxclaude, wherever the CLI was imported from
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + python_path if python_path else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def daemon_command(settings: ServerSettings, model_name: Optional[str]) -> list[str]:
    command = [sys.executable, "-m", DAEMON_MODULE, "--host", settings.host, "--port", str(settings.port)]
    if settings.model:  # none: every route goes to a remote backend
        command += ["--model", str(settings.model)]
    if model_name:
        command += ["--model-name", model_name]
    return command


def spawn(settings: ServerSettings, model_name: Optional[str]) -> subprocess.Popen:
    with open_private(stderr_log_file(), "wb") as output:
        return subprocess.Popen(
            daemon_command(settings, model_name), env=child_env(settings), stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )


# -- waiting -------------------------------------------------------------------------------


def wait_ready(pid: int, timeout: float, progress: Progress, proc: Optional[subprocess.Popen] = None) -> DaemonState:
    """Poll until the state file names `pid` and /health is ok; raise if it dies, fails or times out."""
    deadline = time.monotonic() + timeout
    reported = None
    state: Optional[DaemonState] = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise died_error(proc.returncode, pid)
        if proc is None and not pid_alive(pid):
            raise died_error(None, pid)
        if state is None:
            candidate = load_state_file()
            state = candidate if candidate is not None and candidate.pid == pid else None
        if state is not None:
            health = client.health(state.url)
            status = health["status"] if health else "starting"
            if status == "ok":
                return state
            if status == "failed":
                error = load_failed_error(pid, health)
                stop_pid(state, timeout=5.0)
                raise error
            message = "loading model…" if status == "loading" else "starting daemon…"
        else:
            message = "starting daemon…"
        if message != reported:
            progress(message)
            reported = message
        if time.monotonic() > deadline:
            if state is not None:
                stop_pid(state, timeout=5.0)
            elif proc is not None:
                proc.kill()
            logged = last_logged_error(pid)
            if logged is not None:
                raise MlxClaudeError(f"the daemon was not ready after {timeout:.0f}s: {logged[0]}",
                                     hint=logged[1] or "see `mlxclaude logs --level error`")
            raise MlxClaudeError(f"the daemon was not ready after {timeout:.0f}s",
                                 hint=f"see `mlxclaude logs` and {stderr_log_file()}")
        time.sleep(POLL)


# -- the public API ------------------------------------------------------------------------


def start(settings: ServerSettings, *, foreground: bool = False, on_progress: Optional[Progress] = None,
          explicit_model: bool = False, timeout: Optional[float] = None) -> DaemonState:
    """Start the daemon and wait until it is ready; return its state.

    A running daemon is waited for (if still loading) and returned with `already_running=True`. If it
    serves another model than settings.model, that is an error only with explicit_model=True (the user
    named a model, e.g. `up --model`); a model that merely comes from config does not override it.
    With foreground=True this process becomes the daemon (logs on stderr) and the call does not
    return, unless one is already running. `timeout` (default START_TIMEOUT) bounds the wait for the
    daemon to be ready, from the moment it is spawned: a download happens before.
    """
    requested = resolve_model(settings.model) if settings.model else None
    return _start(settings, requested, foreground=foreground, on_progress=on_progress,
                  timeout=START_TIMEOUT if timeout is None else timeout, explicit_model=explicit_model)


def _start(settings: ServerSettings, requested: Optional["ResolvedModel"], *, foreground: bool,
           on_progress: Optional[Progress], timeout: float, explicit_model: bool = True) -> DaemonState:
    from mlxclaude.daemon.serve import check_settings

    progress = on_progress or (lambda message: None)
    with start_lock(timeout):
        running = read_state()
        if running is not None:
            if explicit_model and requested is not None and not same_model(running, requested.target):
                raise MlxClaudeError(f"the daemon is already running with {running.model} ({running.url})",
                                     hint=f"mlxclaude restart --model {requested.argument}")
            state = wait_ready(running.pid, timeout, progress)
            return replace(state, already_running=True)
        model_name = None
        if requested is not None:
            requested = _downloaded(requested, progress)
            model_name = requested.name
            settings = replace(settings, model=requested.target)
        elif needs_local_model(None):
            resolve_model(None)  # raises "no model configured"
        settings = replace(settings, auth_token=auth_token(settings))
        check_settings(settings)
        check_port_free(settings.host, settings.port)
        if foreground:
            command = daemon_command(settings, model_name) + ["--echo-logs"]
            sys.stdout.flush()
            sys.stderr.flush()
            os.execve(sys.executable, command, child_env(settings))
        proc = spawn(settings, model_name)
        try:
            return wait_ready(proc.pid, timeout, progress, proc)
        except KeyboardInterrupt:
            _abandon(proc)
            raise


def _downloaded(requested: "ResolvedModel", progress: Progress) -> "ResolvedModel":
    """A repo id not in the Hugging Face cache yet, pulled now (without a bar: the CLI pulls with one before
    it calls start); the daemon only ever loads a directory."""
    if requested.path is not None:
        return requested
    from mlxclaude.models.hub import pull_model

    progress(f"downloading {requested.name}…")
    return replace(requested, path=pull_model(requested.name))


def _abandon(proc: subprocess.Popen) -> None:
    """An interrupted `up` takes its half-started daemon down with it."""
    state = load_state_file()
    if state is not None and state.pid == proc.pid:
        stop_pid(state, timeout=5.0)
    elif proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if not pid_alive(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def stop_pid(state: DaemonState, timeout: float = STOP_TIMEOUT) -> None:
    """HTTP shutdown, then SIGTERM, then SIGKILL; signals go only to a pid that runs our daemon."""
    pid = state.pid
    if not (client.shutdown(state.url, state.token) and _wait_exit(pid, timeout)):
        for sig, wait in ((signal.SIGTERM, TERM_TIMEOUT), (signal.SIGKILL, TERM_TIMEOUT)):
            if not is_our_daemon(pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _wait_exit(pid, wait):
                break
    remove_state(pid)


def stop(timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the running daemon; False when none was running."""
    state = read_state()
    if state is None:
        return False
    stop_pid(state, timeout)
    return True


def status() -> Optional[dict]:
    """The running daemon's facts (never the token), or None when none runs. `state` is one of
    ready, loading, failed or unreachable; live figures come from GET /mlxclaude/status.
    """
    state = read_state()
    if state is None:
        return None
    info: dict = {"running": True, **state.to_dict(with_token=False)}
    live = client.status(state.url, state.token)
    if live is not None:
        info.update({key: value for key, value in live.items() if key not in ("host", "port")})
        return info
    health = client.health(state.url)
    info["state"] = {"ok": "ready"}.get(health["status"], health["status"]) if health else "unreachable"
    if health and health.get("error"):
        info["error"] = health["error"]
    return info


def restart(settings: Optional[ServerSettings] = None, *, model: Optional[str] = None, host: Optional[str] = None,
            port: Optional[int] = None, on_progress: Optional[Progress] = None,
            timeout: Optional[float] = None) -> DaemonState:
    """Stop the daemon (if any) and start it again. Model, host and port come from the arguments,
    else from the daemon that was running, else from `settings` (default: MLXCLAUDE_* environment).
    """
    from mlxclaude.config.registry import ServerSettings

    settings = settings or ServerSettings.from_env()
    previous = read_state()
    requested = resolve_model(model) if model else None  # fail on a bad name before stopping anything
    if previous is not None:
        if requested is None and previous.model_path:
            requested = resolve_model(previous.model_path)
            requested = replace(requested, name=previous.model or requested.name)
        host = host or previous.host
        port = previous.port if port is None else port
        stop_pid(previous)
    settings = replace(settings, host=host or settings.host, port=settings.port if port is None else port)
    if requested is None and settings.model:
        requested = resolve_model(settings.model)
    if requested is None and previous is None and (last := last_model()) is not None:
        name, path = last  # down, nothing configured: the model the last daemon served
        requested = replace(resolve_model(path), name=name or Path(path).name)
    return _start(settings, requested, foreground=False, on_progress=on_progress,
                  timeout=START_TIMEOUT if timeout is None else timeout)
