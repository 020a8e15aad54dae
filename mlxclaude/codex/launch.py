"""Find Codex CLI and start it on the daemon. Everything goes on its command line (`-c` overrides: a model
provider named `mlxclaude` with the daemon's /v1 base URL and the Responses wire API, the model, its context
window) and the token in one environment variable the provider names: the user's own ~/.codex/config.toml is
read as always and never written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

from mlxclaude.errors import MlxClaudeError

BIN_ENV = "MLXCLAUDE_CODEX_BIN"
KEY_ENV = "MLXCLAUDE_API_KEY"  # the token Codex sends as its bearer key (the provider's env_key)
PROVIDER = "mlxclaude"
INSTALL_HINT = "npm install -g @openai/codex"


def find_codex() -> Optional[Path]:
    """MLXCLAUDE_CODEX_BIN, else `codex` on PATH."""
    explicit = os.environ.get(BIN_ENV)
    candidate = Path(explicit).expanduser() if explicit else (Path(found) if (found := shutil.which("codex")) else None)
    if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def require_codex() -> Path:
    path = find_codex()
    if path is not None:
        return path
    if os.environ.get(BIN_ENV):
        raise MlxClaudeError(f"codex not found: {BIN_ENV}={os.environ[BIN_ENV]} is not an executable file",
                             hint=f"fix {BIN_ENV}, or unset it to search PATH")
    raise MlxClaudeError("codex not found", hint=INSTALL_HINT)


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def codex_argv(codex: Path, args: list[str], *, base_url: str, model: str,
               context_window: Optional[int] = None) -> list[str]:
    provider = (f"{{name={toml_string(PROVIDER)}, base_url={toml_string(base_url.rstrip('/') + '/v1')}, "
                f"env_key={toml_string(KEY_ENV)}, wire_api=\"responses\"}}")
    argv = [str(codex), "-c", f"model_provider={toml_string(PROVIDER)}", "-c", f"model_providers.{PROVIDER}={provider}",
            "-m", model]
    if context_window:
        argv += ["-c", f"model_context_window={context_window}"]
    return [*argv, *args]


def codex_env(token: str, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    return {**(os.environ if base is None else base), KEY_ENV: token}


def launch_codex(args: list[str], *, base_url: str, token: str, model: str,
                 context_window: Optional[int] = None) -> int:
    """Replace this process with Codex (POSIX), or run it as a child and return its exit code."""
    argv = codex_argv(require_codex(), args, base_url=base_url, model=model, context_window=context_window)
    if os.name != "posix":
        return subprocess.call(argv, env=codex_env(token))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, codex_env(token))
    raise AssertionError("unreachable")  # pragma: no cover


def run_codex(args: list[str], *, base_url: str, token: str, model: str, context_window: Optional[int] = None,
              cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None,
              timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """Codex as a child process, its output captured (tests, scripts)."""
    argv = codex_argv(require_codex(), args, base_url=base_url, model=model, context_window=context_window)
    return subprocess.run(argv, env=codex_env(token, env), cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)
