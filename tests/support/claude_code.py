"""Find and run the real Claude Code binary (npm package @anthropic-ai/claude-code)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (
    "node_modules/@anthropic-ai/claude-code-linux-x64/claude",
    "node_modules/@anthropic-ai/claude-code-linux-arm64/claude",
    "node_modules/@anthropic-ai/claude-code-darwin-arm64/claude",
    "node_modules/@anthropic-ai/claude-code/bin/claude.exe",
)


def is_real_binary(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and path.stat().st_size > 1_000_000


def find_claude() -> Path | None:
    explicit = os.environ.get("MLXCLAUDE_CLAUDE_BIN")
    if explicit:
        return Path(explicit)
    for root in (REPO / ".cache" / "npm", REPO):
        for candidate in CANDIDATES:
            path = root / candidate
            if is_real_binary(path):
                return path
    found = shutil.which("claude")
    if found and is_real_binary(Path(found).resolve()):
        return Path(found)
    return None


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
