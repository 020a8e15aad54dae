"""Start Claude Code with the daemon's environment.

The env goes in twice: as process environment, and as `--settings <file>` with `{"env": …}`. Claude Code
lets an `env` entry in any settings file override the process environment (§8.2), so a settings.json
still wired to another endpoint (or an older `settings wire`) would otherwise win; `--settings` ranks
above user and project files. The file (0600, it holds the token) is named by its content's digest under
the state dir, so concurrent runs never clash and nothing has to be cleaned up after an exec.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Iterator, Mapping, Optional, Union

from mlxclaude import paths
from mlxclaude.atomic import atomic_write_bytes
from mlxclaude.claude.find import require_claude

EXEC_ENV = "MLXCLAUDE_CLAUDE_EXEC"   # "0": run Claude Code as a child process instead of exec
# provider switches that send Claude Code to Bedrock/Vertex/Foundry instead of ANTHROPIC_BASE_URL
PROVIDER_SWITCHES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY",
                     "CLAUDE_CODE_USE_ANTHROPIC_AWS", "CLAUDE_CODE_USE_GATEWAY")
FileArg = Union[None, int, IO]


def child_env(env: Mapping[str, str], base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """os.environ (or `base`) without provider switches, then `env` on top."""
    merged = {key: value for key, value in (os.environ if base is None else base).items()
              if key not in PROVIDER_SWITCHES}
    merged.update(env)
    return merged


def settings_file(env: Mapping[str, str]) -> Path:
    """A settings file carrying `env`, for `claude --settings`."""
    raw = (json.dumps({"env": dict(env)}, indent=2, sort_keys=True) + "\n").encode()
    directory = paths.state_dir() / "claude-run"
    path = directory / f"settings-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    with contextlib.suppress(OSError):
        if path.read_bytes() == raw:
            return path
    atomic_write_bytes(path, raw, mode=0o600)
    return path


def claude_argv(claude: Path, args: list[str], env: Mapping[str, str], *, pin_settings: bool = True) -> list[str]:
    """`claude --settings <file> ARGS…`; a `--settings` of the user's own in ARGS comes later and wins."""
    pinned = ["--settings", str(settings_file(env))] if pin_settings and env else []
    return [str(claude), *pinned, *args]


def launch_claude(claude: Optional[Path], args: list[str], env: dict[str, str], *,
                  pin_settings: bool = True) -> int:
    """Replace this process with Claude Code (POSIX: signals and the TTY go straight to it). Returns
    Claude Code's exit code only where it runs as a child (Windows, or MLXCLAUDE_CLAUDE_EXEC=0)."""
    path = require_claude(claude)
    if os.name != "posix" or os.environ.get(EXEC_ENV, "1") == "0":
        return run_claude(path, args, env, pin_settings=pin_settings)
    argv = claude_argv(path, args, env, pin_settings=pin_settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, child_env(env))
    raise AssertionError("unreachable")  # pragma: no cover


def run_claude(claude: Optional[Path], args: list[str], env: Mapping[str, str], *, cwd: Optional[Path] = None,
               stdin: FileArg = None, stdout: FileArg = None, stderr: FileArg = None,
               timeout: Optional[float] = None, pin_settings: bool = True,
               base_env: Optional[Mapping[str, str]] = None) -> int:
    """Run Claude Code as a child process and return its exit code (128+N when killed by signal N).
    Ctrl-C reaches Claude Code (same process group) and is ignored here while it runs."""
    path = require_claude(claude)
    argv = claude_argv(path, args, env, pin_settings=pin_settings)
    proc = subprocess.Popen(argv, env=child_env(env, base_env), cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)
    with _sigint_ignored():
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return 128 - code if code < 0 else code


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
