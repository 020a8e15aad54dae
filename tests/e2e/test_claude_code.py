"""The real Claude Code binary against the real server, headless (`claude -p`)."""

from __future__ import annotations


import pytest

from mlxclaude.daemon.serve import mlx_backend_loader
from mlxclaude.config.registry import ServerSettings
from support.claude_code import claude_env, require_claude, run_claude
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.e2e
TOKEN = "e2e-token"
SMALL_PROMPT = ["--tools", "Bash", "--system-prompt", "You are a terse coding agent."]


@pytest.fixture(scope="module")
def claude():
    return require_claude()


def served_kinds(server) -> int:
    return server.worker.requests_served


def test_claude_says_hi_through_the_real_mlx_engine(claude, tiny_model_dir, tmp_path):
    settings = ServerSettings(model=str(tiny_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, max_output_tokens=48) as server:
        result = run_claude(claude, ["-p", "say hi", *SMALL_PROMPT], claude_env(server.url, TOKEN, tmp_path / "cfg"),
                            cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert served_kinds(server) >= 1, "claude exited without asking the server"


def test_claude_runs_a_bash_tool_the_scripted_model_asks_for(claude, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()

    def script(chat):
        if chat.json_schema is not None:
            return '{"title": "Write a file"}'
        if chat.messages[-1]["role"] == "tool":
            return "Wrote the file."
        return ('I will write it.<tool_call>{"name": "Bash", "arguments": '
                '{"command": "echo round-trip > proof.txt", "description": "write proof"}}</tool_call>')

    backend = ScriptedBackend(script)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        result = run_claude(claude, ["-p", "write the proof file", "--allowedTools", "Bash", *SMALL_PROMPT],
                            claude_env(server.url, TOKEN, tmp_path / "cfg"), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir / "proof.txt").read_text().strip() == "round-trip"
    assert "Wrote the file." in result.stdout
    follow_up = backend.requests[-1].messages
    assert follow_up[-2]["role"] == "assistant" and follow_up[-2]["tool_calls"][0]["function"]["name"] == "Bash"
    tool_result = follow_up[-1]
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == follow_up[-2]["tool_calls"][0]["id"]


def test_two_claude_sessions_at_once_are_generated_together(claude, tiny_model_dir, tmp_path):
    """Two `claude -p` runs started together (a second terminal, a subagent): their turns share the batch and both
    finish. (This Claude Code sends no title request under -p, so two sessions make the overlap.)"""
    import threading

    settings = ServerSettings(model=str(tiny_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, max_output_tokens=48) as server:
        for attempt in range(3):  # both start together; the overlap is near certain, not guaranteed
            server.worker.batcher.largest_batch = 0
            results = {}

            def run(index):
                results[index] = run_claude(claude, ["-p", f"say hi ({index})", *SMALL_PROMPT],
                                            claude_env(server.url, TOKEN, tmp_path / f"cfg-{attempt}-{index}"),
                                            cwd=tmp_path)

            threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(300)
            for result in results.values():
                assert result.returncode == 0, result.stderr[-2000:]
            if server.worker.batcher.largest_batch >= 2:
                return
    pytest.fail("the two sessions' requests never overlapped in the batch")
