"""A daemon with no local model: config.toml routes every model to an OpenAI-compatible engine (the real
mlx_lm.server on the tiny model), and `up`, `status`, `settings wire`, `doctor`, `run` with the real claude
and `down` work without loading MLX in the daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxclaude import paths
from support.claude_code import require_claude
from support.daemon_env import Env
from support.mlx_lm_server import MlxLmServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def remote_only(tmp_path, tiny_model_dir, monkeypatch):
    upstream = MlxLmServer(tiny_model_dir, tmp_path / "mlx-lm.log").start()
    env = Env((tmp_path / "home").resolve(), tiny_model_dir)
    monkeypatch.setenv("MLXCLAUDE_HOME", str(env.home))
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'port = {env.port}\n[backends.team]\nkind = "openai"\nurl = "{upstream.url}/v1"\n'
                      f'model = "default_model"\n[routes]\n"*" = "team"\n')
    env.env.update(MLXCLAUDE_MAX_OUTPUT_TOKENS="32", CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"),
                   HOME=str(tmp_path / "user"))
    try:
        yield env
    finally:
        env.cli("down", timeout=30)
        upstream.kill()


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_remote_only_daemon_starts_reports_and_wires_claude_code(remote_only):
    env = remote_only
    up = env.cli("up", timeout=120)
    assert up.returncode == 0, up.stderr
    assert "none (every route goes to a remote backend)" in up.stdout
    state = env.state()
    assert state["model"] is None
    status = env.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["state"] == "ready" and [backend["name"] for backend in body["backends"]] == ["team"]
    assert "libmlx" not in mapped_libraries(state["pid"])  # nothing tried to load MLX

    wired = env.cli("settings", "wire", timeout=60)
    assert wired.returncode == 0, wired.stderr
    settings = json.loads((Path(env.env["CLAUDE_CONFIG_DIR"]) / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_BASE_URL"] == state["url"]
    assert "ANTHROPIC_MODEL" not in settings["env"]  # Claude Code keeps its own ids for the routes

    doctor = env.cli("doctor", timeout=120)
    assert "every route goes to a remote backend" in doctor.stdout + doctor.stderr


def test_run_drives_the_real_claude_through_the_remote_backend(remote_only):
    env = remote_only
    env.env["MLXCLAUDE_CLAUDE_BIN"] = str(require_claude())
    result = env.cli("run", "--", "-p", "say hi", "--tools", "Bash", "--system-prompt", "You are terse.",
                     timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    finished = [json.loads(line) for line in env.daemon_log.read_text().splitlines()
                if '"event":"request_finish"' in line]
    assert finished and all(record["backend"] == "team" for record in finished)
    assert "libmlx" not in mapped_libraries(env.state()["pid"])
