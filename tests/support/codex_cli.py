"""Find the real Codex CLI binary (npm package @openai/codex: its native binary comes in the platform package)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_NPM = REPO / ".cache" / "npm"  # where .ci/run installs @openai/codex
TRIPLES = {("Linux", "x86_64"): ("linux-x64", "x86_64-unknown-linux-musl"),
           ("Linux", "aarch64"): ("linux-arm64", "aarch64-unknown-linux-musl"),
           ("Darwin", "arm64"): ("darwin-arm64", "aarch64-apple-darwin"),
           ("Darwin", "x86_64"): ("darwin-x64", "x86_64-apple-darwin")}


def find_codex() -> Path | None:
    """MLXCLAUDE_CODEX_BIN, then the native binary of the repo's own npm install."""
    explicit = os.environ.get("MLXCLAUDE_CODEX_BIN")
    if explicit:
        return Path(explicit)
    package, triple = TRIPLES.get((platform.system(), platform.machine()), ("", ""))
    native = LOCAL_NPM / "node_modules" / "@openai" / f"codex-{package}" / "vendor" / triple / "bin" / "codex"
    return native if native.is_file() else None


def require_codex(monkeypatch) -> Path:
    """The real binary, set as MLXCLAUDE_CODEX_BIN; a missing one fails under CI and skips elsewhere."""
    binary = find_codex()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("codex binary not found: .ci/run installs @openai/codex into .cache/npm")
        pytest.skip("codex not installed (npm install --prefix .cache/npm @openai/codex)")
    monkeypatch.setenv("MLXCLAUDE_CODEX_BIN", str(binary))
    return binary
