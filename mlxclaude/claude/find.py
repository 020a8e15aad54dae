"""Find the `claude` executable (npm package @anthropic-ai/claude-code, or the native installer's)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional

from mlxclaude.errors import MlxClaudeError

SCOPE = "@anthropic-ai"
PACKAGE = "claude-code"
# install.cjs treats a bin/claude.exe under 4 KiB as its placeholder stub (postinstall not run yet)
STUB_MAX_BYTES = 4096
INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"
BIN_ENV = "MLXCLAUDE_CLAUDE_BIN"


def find_claude() -> Optional[Path]:
    """MLXCLAUDE_CLAUDE_BIN, else `claude` on PATH, else the usual install places. A `claude` that is
    npm's placeholder stub (postinstall skipped) is swapped for the platform package's native binary
    next to it. None when nothing is found (or MLXCLAUDE_CLAUDE_BIN names a missing file)."""
    explicit = os.environ.get(BIN_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        return prefer_native(path) if _is_executable(path) else None
    for candidate in _candidates():
        if _is_executable(candidate):
            return prefer_native(candidate)
    return None


def require_claude(path: Optional[Path] = None) -> Path:
    """`path` (or find_claude()) when it is there; else the one-line error with the install hint."""
    path = path if path is not None else find_claude()
    if path is not None and _is_executable(path):
        return path
    explicit = os.environ.get(BIN_ENV)
    if path is None and explicit:
        raise MlxClaudeError(f"claude not found: {BIN_ENV}={explicit} is not an executable file",
                             hint=f"fix {BIN_ENV}, or unset it to search PATH")
    raise MlxClaudeError("claude not found", hint=INSTALL_HINT)


def claude_version(path: Path, timeout: float = 15.0) -> Optional[str]:
    """`2.1.197` from `claude --version` ("2.1.197 (Claude Code)"); None when it does not run."""
    try:
        result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, env={**os.environ, "DISABLE_AUTOUPDATER": "1"})
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    match = re.search(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?", result.stdout)
    return match.group(0) if match else None


# -- where to look ----------------------------------------------------------------------------------


def _candidates() -> Iterator[Path]:
    found = shutil.which("claude")
    if found:
        yield Path(found)
    home = Path.home()
    yield home / ".claude" / "local" / "claude"        # `claude migrate-installer` (local npm install)
    yield home / ".local" / "bin" / "claude"           # the native installer
    for prefix in _npm_prefixes():
        if sys.platform == "win32":
            yield prefix / "claude.cmd"
            yield prefix / "claude.exe"
        else:
            yield prefix / "bin" / "claude"


def _npm_prefixes() -> Iterator[Path]:
    """npm's global prefix: the configured one, the usual ones, then `npm prefix -g` as a last resort."""
    configured = os.environ.get("NPM_CONFIG_PREFIX") or os.environ.get("npm_config_prefix")
    if configured:
        yield Path(configured).expanduser()
    home = Path.home()
    yield home / ".npm-global"
    if sys.platform == "win32":
        if os.environ.get("APPDATA"):
            yield Path(os.environ["APPDATA"]) / "npm"
    else:
        yield Path("/opt/homebrew")
        yield Path("/usr/local")
    npm = shutil.which("npm")
    if npm:
        try:
            result = subprocess.run([npm, "prefix", "-g"], capture_output=True, text=True, timeout=10,
                                    stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return
        if result.returncode == 0 and result.stdout.strip():
            yield Path(result.stdout.strip())


# -- the npm stub -----------------------------------------------------------------------------------


def is_stub(path: Path) -> bool:
    """npm's placeholder `bin/claude.exe`, or any tiny launcher script (a few hundred bytes)."""
    try:
        return path.resolve().stat().st_size < STUB_MAX_BYTES
    except OSError:
        return False


def platform_packages() -> list[tuple[str, str]]:
    """(package, binary) names of the native Claude Code packages for this machine, best first."""
    machine = platform.machine().lower()
    cpu = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    if sys.platform == "darwin":
        # an x64 Python under Rosetta still runs the arm64 binary natively (the x64 one needs AVX)
        keys = ["darwin-arm64", "darwin-x64"] if cpu == "arm64" else ["darwin-x64", "darwin-arm64"]
    elif sys.platform.startswith("linux"):
        glibc, musl = f"linux-{cpu}", f"linux-{cpu}-musl"
        keys = [glibc, musl] if platform.libc_ver()[0] == "glibc" else [musl, glibc]
    elif sys.platform == "win32":
        keys = [f"win32-{cpu}"]
    else:
        keys = [f"{sys.platform}-{cpu}"]
    binary = "claude.exe" if sys.platform == "win32" else "claude"
    return [(f"{PACKAGE}-{key}", binary) for key in keys]


def native_binary_near(path: Path) -> Optional[Path]:
    """The platform package's binary installed alongside the wrapper package that `path` belongs to:
    hoisted (`node_modules/@anthropic-ai/claude-code-<platform>/claude`) or nested under it."""
    real = path.resolve()
    for directory in list(real.parents)[:6]:
        for package, binary in platform_packages():
            for candidate in (directory / package / binary,                      # directory is @anthropic-ai
                              directory / SCOPE / package / binary,              # directory is node_modules
                              directory / "node_modules" / SCOPE / package / binary):
                if _is_executable(candidate) and not is_stub(candidate):
                    return candidate
    return None


def prefer_native(path: Path) -> Path:
    if is_stub(path):
        native = native_binary_near(path)
        if native is not None:
            return native
    return path


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
