"""`mlxclaude run -- -p "say hi"`: daemon started on demand, the real claude binary, the real MLX engine."""

from __future__ import annotations

import pytest

from support.claude_code import require_claude
from support.daemon_env import Env

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path, tiny_model_dir):
    claude = require_claude()
    env = Env((tmp_path / "home").resolve(), tiny_model_dir)
    env.env.update(MLXCLAUDE_CLAUDE_BIN=str(claude), MLXCLAUDE_PORT=str(env.port), MLXCLAUDE_MAX_OUTPUT_TOKENS="512",
                   CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"))
    yield env
    env.cli("down", timeout=30)


def test_run_starts_the_daemon_and_passes_claude_code_exit_code(env, tmp_path):
    result = env.cli("run", "--model", str(env.model), "--", "-p", "say hi", "--tools", "Bash",
                     "--system-prompt", "You are terse.", timeout=300)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:],
                                    env.daemon_log.read_text()[-3000:] if env.daemon_log.exists() else "")
    status = env.cli("status", "--json")
    assert status.returncode == 0, "run should leave the daemon up for the next session"
    assert '"requests_served"' in status.stdout
    log = env.daemon_log.read_text()
    assert '"event":"request_finish"' in log, "claude never reached the daemon"

    failing = env.cli("run", "--", "--definitely-not-a-claude-flag", timeout=120)
    assert failing.returncode == 1  # claude's own exit code, passed through
    assert "error: unknown option '--definitely-not-a-claude-flag'" in failing.stderr
