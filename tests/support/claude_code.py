"""Find and run the real Claude Code binary (npm package @anthropic-ai/claude-code)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_NPM = REPO / ".cache" / "npm"  # where .ci/run installs @anthropic-ai/claude-code


def find_claude() -> Path | None:
    """MLXCLAUDE_CLAUDE_BIN, then the repo's own npm install, then wherever the product would look."""
    from mlxclaude.claude.find import find_claude as product_find_claude
    from mlxclaude.claude.find import prefer_native

    local = LOCAL_NPM / "node_modules" / ".bin" / "claude"
    if not os.environ.get("MLXCLAUDE_CLAUDE_BIN") and local.exists():
        return prefer_native(local.resolve())
    return product_find_claude()


def require_claude() -> Path:
    """The real binary; a missing one fails under CI (which installs it) and skips elsewhere."""
    binary = find_claude()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("claude binary not found: .ci/run installs @anthropic-ai/claude-code into .cache/npm")
        pytest.skip("claude binary not installed (npm install --prefix .cache/npm @anthropic-ai/claude-code)")
    return binary


def claude_env(base_url: str, token: str, config_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": token,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
        "API_TIMEOUT_MS": "600000",
    })
    return env


def run_claude(binary: Path, args: list[str], env: dict[str, str], cwd: Path,
               timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
