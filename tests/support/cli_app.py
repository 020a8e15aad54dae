"""The one way tests drive the `mlxclaude` command, through the entry point pyproject.toml installs.

- `run_cli(*args)` runs it in this process: its own stdin, stdout and stderr, errors turned into one
  line plus a hint and an exit code exactly as for a user. Use it unless a real process matters.
- `run_process(*args)` / `start_process(*args)` run it as a child process, for what only a process
  shows: daemon lifecycle, signals, shell completion, what a fresh interpreter imports.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
PROG = "mlxclaude"


def entry_point() -> tuple[str, str]:
    """(module, function) of the `mlxclaude` console script, as pyproject.toml declares it."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts[PROG].partition(":")
    return module, function


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(*args: str, input: Optional[str] = None, env: Optional[Mapping[str, Optional[str]]] = None) -> CliResult:
    """`mlxclaude ARGS` in this process. `input` is its stdin; `env` sets (None: removes) variables for this
    call only. Exceptions other than the exit propagate, with their traceback."""
    module, function = entry_point()
    main = getattr(importlib.import_module(module), function)
    stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    saved = sys.stdin, sys.stdout, sys.stderr, sys.argv
    saved_env = {key: os.environ.get(key) for key in env or {}}
    _set_env(env or {})
    sys.stdin, sys.stdout, sys.stderr, sys.argv = stdin, stdout, stderr, [PROG, *args]
    try:
        main(list(args))
        code = 0
    except SystemExit as exited:
        if exited.code is None or isinstance(exited.code, int):
            code = exited.code or 0
        else:  # sys.exit("message"), as Python itself reports it
            print(exited.code, file=stderr)
            code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.argv = saved
        _set_env(saved_env)
    stdout.flush()
    stderr.flush()
    return CliResult(code, stdout.buffer.getvalue().decode(), stderr.buffer.getvalue().decode())


def _set_env(values: Mapping[str, Optional[str]]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def command(*args: str, python_options: Sequence[str] = ()) -> list[str]:
    """The argv of `mlxclaude ARGS` as a child process of this interpreter (named `mlxclaude`, as installed,
    so shell completion finds its variable)."""
    module, function = entry_point()
    # Ctrl-C as a terminal gives it, even when the suite runs in the background of a shell, which ignores SIGINT
    restore_interrupt = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    code = f"{restore_interrupt}; import sys; sys.argv[0] = {PROG!r}; from {module} import {function}; {function}()"
    return [sys.executable, *python_options, "-c", code, *args]


def process_env(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """`env` (default: this process's environment, which the conftest isolates) importing this checkout."""
    merged = dict(os.environ if env is None else env)
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), merged.get("PYTHONPATH")]))
    return merged


def run_process(*args: str, env: Optional[Mapping[str, str]] = None, timeout: float = 60,
                python_options: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """`mlxclaude ARGS` as a child process, waited for (stdin empty; stdout and stderr captured as text)."""
    return subprocess.run(command(*args, python_options=python_options), env=process_env(env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def start_process(*args: str, env: Optional[Mapping[str, str]] = None) -> subprocess.Popen:
    """`mlxclaude ARGS` as a child process left running (stdout and stderr piped, as text)."""
    return subprocess.Popen(command(*args), env=process_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
