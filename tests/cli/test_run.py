"""`mlxclaude run --model M` holds a running daemon to M, as `up --model M` does; without --model the
running daemon is used whatever it serves. A repo id not downloaded yet is downloaded before the daemon
starts, in the foreground (against a loopback hub here)."""

from __future__ import annotations

import os

import pytest

from mlxclaude.models.resolve import resolve
from support.claude_code import require_claude
from support.cli_app import run_cli
from support.fake_hub import FakeHub, write_model_dir
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

TOKEN = "run-token-1234"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback hub serving two small (not loadable) models."""
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        for repo in ("org/other-model", "org/configured"):
            server.add_repo(repo, write_model_dir(tmp_path / repo, weights_bytes=200_000))
        yield server


def test_an_explicit_model_must_be_the_one_served(starts, hub):
    result = run_cli("run", "--model", "org/other-model")
    assert result.code == 1 and "error: stopped by the test" in result.err
    assert starts == [{"model": "org/other-model", "on_progress": starts[0]["on_progress"], "explicit_model": True}]


def test_a_repo_id_is_downloaded_in_the_foreground_before_the_daemon_starts(starts, hub):
    result = run_cli("run", "--model", "org/other-model")
    assert "org/other-model" in result.err and "kB" in result.err and "files" in result.err  # the progress bar
    assert result.err.index("downloaded org/other-model") < result.err.index("stopped by the test")
    assert resolve("org/other-model", pull=False).path is not None  # in the HF cache when the daemon starts
    assert len(hub.gets("model.safetensors")) == 1


def test_a_configured_model_does_not_override_the_running_daemon(starts, hub, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_MODEL", "org/configured")
    assert run_cli("run").code == 1
    assert starts[0]["model"] == "org/configured" and starts[0]["explicit_model"] is False


@pytest.fixture
def claude_bin(tmp_path, monkeypatch):
    binary = require_claude()
    monkeypatch.chdir(tmp_path)                           # claude may write into its working directory
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(binary))
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_EXEC", "0")       # a child process: pytest must survive
    return binary


@pytest.mark.e2e
def test_run_passes_args_and_the_exit_code_through(claude_bin, monkeypatch, capfd):
    """`run` glue with the daemon manager stood in for by a live scripted server (the manager has its
    own tests; `mlxclaude run` end to end is tested by the CLI)."""
    from mlxclaude.daemon import manager
    from mlxclaude.daemon.state import DaemonState

    backend = ScriptedBackend(lambda chat: "Run reply.", context_length=32768, name="Tiny")
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        started = []

        def start(settings, **kwargs):
            started.append(settings)
            return DaemonState(pid=os.getpid(), url=server.url, host="127.0.0.1", port=server.port,
                               model="Tiny", token=TOKEN)

        monkeypatch.setattr(manager, "start", start)
        ok = run_cli("run", "--model", "tiny", "--", "-p", "say hi", "--tools", "Bash",
                       "--system-prompt", "Be terse.")
        child_out, child_err = capfd.readouterr()             # claude writes to the inherited descriptors
        out, err = ok.out + child_out, ok.err + child_err
        monkeypatch.setenv("MLXCLAUDE_MODEL", "tiny")  # a configured model: no default-model offer
        bad = run_cli("run", "--", "--no-such-flag")
    assert ok.code == 0, err[-2000:]
    assert "Run reply." in out
    assert started[0].model == "tiny"
    request = backend.requests[0]
    assert request.model == "claude-local-tiny" and request.max_tokens == 8192
    assert "warning: the model's context is 32768 tokens" in err
    assert bad.code != 0


def test_run_without_claude_fails_before_starting_a_daemon(tmp_path, monkeypatch):
    from mlxclaude.daemon import manager

    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(tmp_path / "no-claude"))
    monkeypatch.setattr(manager, "start", lambda *a, **k: pytest.fail("started a daemon"))
    result = run_cli("run")
    assert result.code == 1 and "claude not found" in result.err.splitlines()[0]


ROUTED = '''model = "org/configured"
[backends.small]
kind = "mlx"
model = "org/small"
[routes]
"*haiku*" = "small"
"*" = "local"
'''


@pytest.mark.parametrize("routed", [False, True], ids=["one-model", "routes"])
def test_run_keeps_claude_codes_ids_when_routes_are_configured(tmp_path, monkeypatch, routed):
    """The env handed to claude: every tier on the local model, or (with [routes]) Claude Code's own ids with
    the haiku tier on an id the haiku route matches, said in one line."""
    from mlxclaude import claude, paths
    from mlxclaude.cli import _model_choice
    from mlxclaude.daemon import manager
    from mlxclaude.daemon.state import DaemonState
    from support.live_server import free_port

    binary = tmp_path / "claude"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(binary))
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(ROUTED if routed else 'model = "org/configured"\n')
    port = free_port()   # nothing answers there: the model id and context come from the configuration
    monkeypatch.setattr(manager, "start", lambda settings, **kwargs: DaemonState(
        pid=os.getpid(), url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port, model=settings.model,
        token=TOKEN))
    monkeypatch.setattr(_model_choice, "prepare_model", lambda *args, **kwargs: None)
    launched = []
    monkeypatch.setattr(claude, "launch_claude", lambda binary, args, env: launched.append(env) or 0)
    result = run_cli("run")
    assert result.code == 0, result.err
    env = launched[0]
    if routed:
        first = result.err.splitlines()[0]
        assert first.startswith("routes configured: Claude Code keeps its model ids; haiku → small. ")
        assert first.endswith("What answers: opus → local (org/configured); sonnet → local (org/configured); "
                              "haiku → small (org/small)"), first
        assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku-4-5"
        for key in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                    "CLAUDE_CODE_SUBAGENT_MODEL"):
            assert key not in env
    else:
        assert "routes configured" not in result.err
        assert env["ANTHROPIC_MODEL"] == env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-local-org-configured"


@pytest.mark.parametrize("args, says", [
    (["--port", "28767", "--", "-p", "hi"], "No such option: --port"),
    (["--modle", "tiny"], "No such option: --modle (Possible options: --model)"),
    (["-p", "hi"], "No such option: -p"),
])
def test_runs_own_mistakes_are_its_usage_errors_not_claudes(args, says):
    """Only what follows `--` goes to claude: a mistake before it is a usage error here, before anything starts."""
    result = run_cli("run", *args)
    assert result.code == 2 and says in result.err


def test_run_client_codex_starts_the_daemon_and_hands_codex_the_responses_api(tmp_path, monkeypatch):
    from mlxclaude import codex, paths
    from mlxclaude.cli import _model_choice
    from mlxclaude.daemon import manager
    from mlxclaude.daemon.state import DaemonState
    from support.live_server import free_port

    binary = tmp_path / "codex"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    monkeypatch.setenv("MLXCLAUDE_CODEX_BIN", str(binary))
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text('model = "org/configured"\n')
    port = free_port()
    monkeypatch.setattr(manager, "start", lambda settings, **kwargs: DaemonState(
        pid=os.getpid(), url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port, model=settings.model,
        token=TOKEN))
    monkeypatch.setattr(_model_choice, "prepare_model", lambda *args, **kwargs: None)
    launched = []
    monkeypatch.setattr(codex, "launch_codex", lambda args, **kwargs: launched.append((args, kwargs)) or 0)
    result = run_cli("run", "--client", "codex", "--", "exec", "hello")
    assert result.code == 0, result.err
    args, kwargs = launched[0]
    assert args == ["exec", "hello"]
    assert kwargs == {"base_url": f"http://127.0.0.1:{port}", "token": TOKEN, "model": "org/configured",
                      "context_window": None}
    argv = codex.codex_argv(binary, args, base_url=kwargs["base_url"], model=kwargs["model"])
    assert argv[:3] == [str(binary), "-c", 'model_provider="mlxclaude"']
    assert f'base_url="http://127.0.0.1:{port}/v1"' in argv[4] and 'wire_api="responses"' in argv[4]
    assert 'env_key="MLXCLAUDE_API_KEY"' in argv[4] and argv[5:7] == ["-m", "org/configured"]
    assert "codex → org/configured" in result.err


def test_run_with_an_unknown_client_is_a_usage_error():
    result = run_cli("run", "--client", "aider")
    assert result.code == 2 and "unknown client 'aider'" in result.err and "--client codex" in result.err
