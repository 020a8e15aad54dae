"""The real Codex CLI (`codex exec`) against the daemon's Responses API, launched as `mlxclaude run --client
codex` launches it (mlxclaude.codex: provider, base URL, key and model on the command line)."""

from __future__ import annotations

import json
import os

import pytest

from mlxclaude.codex import run_codex
from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.codex_cli import require_codex
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.e2e
TOKEN = "codex-token"
EXEC = ["exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]


def codex_env(tmp_path) -> dict:
    return {"CODEX_HOME": str(tmp_path / "codex-home"), "NO_COLOR": "1"}


def test_codex_runs_a_shell_command_the_scripted_model_asks_for(monkeypatch, tmp_path):
    require_codex(monkeypatch)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (tmp_path / "codex-home").mkdir()

    def script(chat):
        if chat.messages[-1]["role"] == "tool":
            return "Wrote the file: " + chat.messages[-1]["content"].strip()[:40]
        command = json.dumps({"cmd": "echo round-trip > proof.txt && echo written"})
        return f'I will write it.<tool_call>{{"name": "exec_command", "arguments": {command}}}</tool_call>'

    backend = ScriptedBackend(script)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        result = run_codex([*EXEC, "write the proof file"], base_url=server.url, token=TOKEN, model="local",
                           cwd=workdir, env={**os.environ, **codex_env(tmp_path)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    assert (workdir / "proof.txt").read_text().strip() == "round-trip"
    assert "Wrote the file" in result.stdout + result.stderr
    follow_up = backend.requests[-1].messages
    assert follow_up[-1]["role"] == "tool" and "written" in follow_up[-1]["content"]


@pytest.mark.mlx
def test_codex_completes_a_turn_on_the_real_mlx_engine(monkeypatch, tiny_model_dir, tmp_path):
    require_codex(monkeypatch)
    (tmp_path / "codex-home").mkdir()
    settings = ServerSettings(model=str(tiny_model_dir))
    # the calibrated tiny model ends a reply after ~40 tokens on average: room enough that Codex gets a completed
    # response, not an incomplete one (which it reports as an error)
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, max_output_tokens=1024) as server:
        result = run_codex([*EXEC, "say hi"], base_url=server.url, token=TOKEN, model="local", cwd=tmp_path,
                           env={**os.environ, **codex_env(tmp_path)}, context_window=32768,
                           timeout=300)
        served = server.worker.requests_served
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    assert served >= 1, "codex exited without asking the server"
