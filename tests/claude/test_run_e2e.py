"""The real `claude` binary, launched the way `mlxclaude run` launches it, against a scripted server.

This proves the environment build_env makes (and the settings file wire_settings writes) is one the
real Claude Code accepts: right endpoint, token, model id, max_tokens, and compaction for small windows.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mlxclaude.claude import build_env, run_claude, unwire_settings, wire_settings
from support.claude_code import require_claude
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.e2e
TOKEN = "e2e-run-token"
MODEL_ID = "claude-local-scripted"
REPLY = "Hi from the scripted model."
SMALL_PROMPT = ["--tools", "Bash", "--system-prompt", "You are a terse coding agent."]


@pytest.fixture(scope="module")
def claude():
    return require_claude()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A clean environment: nothing of the developer's Claude Code or mlxclaude state is read or written."""
    config = tmp_path / "claude-config"
    config.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    base = {key: value for key, value in os.environ.items() if not key.startswith(("ANTHROPIC_", "CLAUDE"))}
    base.update(CLAUDE_CONFIG_DIR=str(config), ANTHROPIC_API_KEY="sk-ant-a-real-key-that-must-not-be-used")
    return config, work, base


def run(claude, args, env, sandbox, *, stdin=None, timeout=180):
    _, work, base = sandbox
    out, err = work.parent / "stdout.txt", work.parent / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        code = run_claude(claude, args, env, cwd=work, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          stdout=stdout, stderr=stderr, timeout=timeout, base_env=base)
    return code, out.read_text(), err.read_text()


def test_claude_says_hi_with_the_env_we_build(claude, sandbox):
    backend = ScriptedBackend(lambda chat: REPLY, context_length=131072)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        env = build_env(base_url=server.url + "/v1", token=TOKEN, model_id=MODEL_ID, context_length=131072)
        code, out, err = run(claude, ["-p", "say hi", *SMALL_PROMPT], env, sandbox)
    assert code == 0, err[-2000:]
    assert REPLY in out
    main = [request for request in backend.requests if request.kind == "main"]
    assert main and all(request.model == MODEL_ID for request in main)
    assert main[0].max_tokens == int(env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"]) == 32000


def test_a_settings_file_pointing_elsewhere_does_not_win(claude, sandbox):
    """An `env` in settings.json beats the process environment; `run` pins its env with --settings."""
    config, _, _ = sandbox
    (config / "settings.json").write_text(json.dumps({"env": {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_AUTH_TOKEN": "wrong", "ANTHROPIC_MODEL": "other"}}))
    backend = ScriptedBackend(lambda chat: REPLY)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        env = build_env(base_url=server.url, token=TOKEN, model_id=MODEL_ID, context_length=65536)
        code, out, err = run(claude, ["-p", "say hi", *SMALL_PROMPT], env, sandbox)
    assert code == 0, err[-2000:]
    assert REPLY in out and backend.requests[-1].model == MODEL_ID


def test_wired_settings_serve_a_plain_claude(claude, sandbox):
    """After `settings wire`, a `claude` started with no help from us talks to the daemon; unwire then
    takes out exactly our keys (Claude Code may have rewritten the file meanwhile: its edits stay)."""
    config, _, _ = sandbox
    settings = config / "settings.json"
    original = b'{"permissions": {"allow": ["Bash(npm run *)"]},\n "cleanupPeriodDays": 30}'
    settings.write_bytes(original)
    backend = ScriptedBackend(lambda chat: REPLY)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        env = build_env(base_url=server.url, token=TOKEN, model_id=MODEL_ID, context_length=65536)
        wire_settings(env)
        code, out, err = run(claude, ["-p", "say hi", *SMALL_PROMPT], {}, sandbox)
    assert code == 0, err[-2000:]
    assert REPLY in out and backend.requests[-1].model == MODEL_ID
    assert backend.requests[-1].max_tokens == 16384
    as_claude_left_it = json.loads(settings.read_bytes())
    result = unwire_settings()
    if result.action == "restored":
        assert settings.read_bytes() == original
    else:
        assert result.action == "merged" and not result.kept
        expected = {key: value for key, value in as_claude_left_it.items() if key != "env"}
        assert json.loads(settings.read_bytes()) == expected


def test_small_window_with_a_claude_id_compacts_in_time(claude, sandbox, tmp_path):
    """A 32k model behind a claude-* id: Claude Code assumes at least a 100k window, so without
    CLAUDE_AUTOCOMPACT_PCT_OVERRIDE a 40k-token conversation would never be compacted."""
    rounds = 3

    def script(chat):
        roles = [message["role"] for message in chat.messages]
        if "assistant" in roles and roles[-1] == "user":       # the summary request
            return "<summary>The user pasted a long list of words.</summary>"
        if roles.count("tool") >= rounds:
            return "done"
        return ('Checking.<tool_call>{"name": "Bash", "arguments": {"command": "echo hi", '
                '"description": "say hi"}}</tool_call>')

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Remember these words: " + " ".join(f"w{i}" for i in range(40_000)))
    backend = ScriptedBackend(script, context_length=200_000)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        env = build_env(base_url=server.url, token=TOKEN, model_id=MODEL_ID, context_length=32768)
        assert env["CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"] == "12"
        with open(prompt) as stdin:
            code, out, err = run(claude, ["-p", "--allowedTools", "Bash", *SMALL_PROMPT], env, sandbox, stdin=stdin)
    assert code == 0, err[-2000:]
    sizes = [len(request.messages) for request in backend.requests if request.kind == "main"]
    summaries = [request for request in backend.requests
                 if "assistant" in [m["role"] for m in request.messages] and request.messages[-1]["role"] == "user"]
    assert summaries, f"Claude Code never compacted (message counts {sizes})"
