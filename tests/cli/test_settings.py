"""`mlxclaude settings wire | show | unwire`, driven in process through the real entry point."""

from __future__ import annotations

import json
import os

import pytest

from support.cli_app import run_cli
from support.daemon_env import fake_daemon
from support.live_server import free_port, live_server
from support.routes_toml import routes_toml
from support.scripted_backend import ScriptedBackend

TOKEN = "cmds-token-1234"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    for key in list(os.environ):
        if key.startswith("MLXCLAUDE_") and key != "MLXCLAUDE_HOME":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def user_settings(tmp_path):
    return tmp_path / "claude-config" / "settings.json"


def test_wire_without_a_daemon_uses_the_configuration(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("MLXCLAUDE_MODEL", "mlx-community/Qwen3-4B-4bit")
    monkeypatch.setenv("MLXCLAUDE_PORT", str(port))
    monkeypatch.setenv("MLXCLAUDE_AUTH_TOKEN", TOKEN)
    result = run_cli("settings", "wire")
    assert result.code == 0, result.err
    assert result.out == "" and f"wired {user_settings(tmp_path)}" in result.err
    env = json.loads(user_settings(tmp_path).read_text())["env"]
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert env["ANTHROPIC_AUTH_TOKEN"] == TOKEN
    assert env["ANTHROPIC_MODEL"] == "claude-local-mlx-community-qwen3-4b-4bit"
    assert "CLAUDE_CODE_MAX_CONTEXT_TOKENS" not in env        # unknown while the daemon is down
    assert run_cli("settings", "unwire").code == 0
    assert not user_settings(tmp_path).exists()


def test_wire_uses_the_running_daemons_port_and_token_not_the_configured_ones(tmp_path, monkeypatch):
    from mlxclaude.daemon.state import DaemonState, write_state

    backend = ScriptedBackend(lambda chat: "hi", context_length=65536, name="Served")
    configured = free_port()
    monkeypatch.setenv("MLXCLAUDE_PORT", str(configured))
    monkeypatch.setenv("MLXCLAUDE_AUTH_TOKEN", "configured-token")
    with live_server(lambda: backend, auth_token=TOKEN) as server, fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url=server.url, host="127.0.0.1", port=server.port,
                                model="Served", token=TOKEN))
        assert run_cli("settings", "wire").code == 0
    env = json.loads(user_settings(tmp_path).read_text())["env"]
    assert server.port != configured
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{server.port}"
    assert env["ANTHROPIC_AUTH_TOKEN"] == TOKEN
    assert env["ANTHROPIC_MODEL"] == "claude-local-served"                 # from that daemon's /health


@pytest.mark.parametrize("raw, fragment", [
    (b'{"env": {"A": 1e400}}', "invalid JSON: the number 1e400 is out of range"),
    (b'{"cleanupPeriodDays": NaN}', "invalid JSON: NaN is not a JSON value"),
    (b'{"env": {}, "x": [Infinity]}', "invalid JSON: Infinity is not a JSON value"),
    (b'{"x": -Infinity}', "invalid JSON: -Infinity is not a JSON value"),
    (b'{"env": {"A": "\\udc80"}}', "invalid JSON: a string holds a lone surrogate escape \\udc80"),
    (b'{"\\ud800x": 1}', "invalid JSON: a string holds a lone surrogate escape \\ud800"),
    (b'{"x": "\\q"}', "invalid JSON at line 1 column 8: Invalid \\escape"),
    (b'{"x": ' + b"9" * 5000 + b"}", "invalid JSON: a number with 5000 digits is too long"),
    (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid JSON: nested too deeply"),
])
def test_wire_refuses_what_python_reads_but_json_is_not(tmp_path, monkeypatch, raw, fragment):
    monkeypatch.setenv("MLXCLAUDE_MODEL", "mlx-community/Qwen3-4B-4bit")
    monkeypatch.setenv("MLXCLAUDE_PORT", str(free_port()))
    target = user_settings(tmp_path)
    target.parent.mkdir()
    target.write_bytes(raw)
    code, out, err = run_cli("settings", "wire")
    assert code == 1 and out == ""
    assert err.splitlines() == [f"error: {target}: {fragment}", "hint: fix or move it, then retry"]
    assert target.read_bytes() == raw


def test_wire_without_a_daemon_or_a_model_is_an_error(monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_PORT", str(free_port()))
    result = run_cli("settings", "wire")
    assert result.code == 1 and "no model" in result.err.splitlines()[0]


def test_wire_show_unwire_with_a_running_daemon(tmp_path, monkeypatch):
    backend = ScriptedBackend(lambda chat: "hi", context_length=65536, name="Tiny-Model")
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        monkeypatch.setenv("MLXCLAUDE_PORT", str(server.port))
        monkeypatch.setenv("MLXCLAUDE_AUTH_TOKEN", TOKEN)
        project = tmp_path / "proj"
        project.mkdir()
        monkeypatch.chdir(project)
        assert run_cli("settings", "wire", "--project").code == 0
    local = project / ".claude" / "settings.local.json"
    env = json.loads(local.read_text())["env"]
    assert env["ANTHROPIC_MODEL"] == "claude-local-tiny-model"            # from /health
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "65536"
    assert not user_settings(tmp_path).exists()

    result = run_cli("settings", "show", "--project", "--json")
    assert result.code == 0
    shown = json.loads(result.out)
    assert shown["wired"] and shown["path"] == str(local)
    assert shown["env"]["ANTHROPIC_AUTH_TOKEN"] == {"value": "****1234", "by": "mlxclaude"}

    result = run_cli("settings", "show", "--project")
    assert result.code == 0
    text = result.out
    assert "wired by mlxclaude" in text and "ANTHROPIC_MODEL" in text and TOKEN not in text

    result = run_cli("settings", "unwire", "--project")
    assert result.code == 0 and "removed" in result.err and not local.exists()


# --- routes in config.toml: Claude Code keeps its own model ids ------------------------------------

ROUTED = routes_toml(main="mlx-community/Qwen3-4B-4bit", small="mlx-community/Qwen3-0.6B-4bit",
                     gpu_url="http://gpu-box:8000/v1", gpu_model="Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8")
TIER_OVERRIDES = ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                  "CLAUDE_CODE_SUBAGENT_MODEL")


def write_config(tmp_path, text: str) -> None:
    from mlxclaude import paths

    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text)


def test_wire_with_routes_keeps_claude_codes_ids_and_stays_reversible(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_PORT", str(free_port()))
    write_config(tmp_path, 'model = "mlx-community/Qwen3-4B-4bit"\n')
    assert run_cli("settings", "wire").code == 0        # first without routes: every tier on the local model
    env = json.loads(user_settings(tmp_path).read_text())["env"]
    assert all(key in env for key in TIER_OVERRIDES)

    write_config(tmp_path, ROUTED)
    result = run_cli("settings", "wire")
    assert result.code == 0, result.err
    assert "routes configured: Claude Code keeps its model ids; haiku → small" in result.err
    env = json.loads(user_settings(tmp_path).read_text())["env"]
    assert not any(key in env for key in TIER_OVERRIDES)  # the earlier wire's values are taken back
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku-4-5"
    assert run_cli("settings", "unwire").code == 0
    assert not user_settings(tmp_path).exists()


def test_wire_with_routes_but_no_haiku_route_leaves_the_haiku_tier_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_PORT", str(free_port()))
    user_settings(tmp_path).parent.mkdir(parents=True)
    original = b'{"env": {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "mine"}, "theme": "dark"}\n'
    user_settings(tmp_path).write_bytes(original)
    write_config(tmp_path, ROUTED.replace('"*haiku*" = "small"\n', ""))
    result = run_cli("settings", "wire")
    assert result.code == 0, result.err
    assert "no haiku route" in result.err
    env = json.loads(user_settings(tmp_path).read_text())["env"]
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "mine" and "ANTHROPIC_MODEL" not in env
    assert run_cli("settings", "unwire").code == 0
    assert user_settings(tmp_path).read_bytes() == original


def test_wire_with_a_bad_route_is_one_error_and_writes_nothing(tmp_path, monkeypatch):
    write_config(tmp_path, ROUTED.replace('"*opus*" = "gpu"', '"*opus*" = "gpus"'))
    result = run_cli("settings", "wire")
    assert result.code != 0 and "no backend named 'gpus'" in result.err and "gpu" in result.err
    assert "Traceback" not in result.err and not user_settings(tmp_path).exists()


def test_show_at_80_columns_keeps_one_line_per_key_with_who_set_it_first(tmp_path, monkeypatch):
    """A long model id no longer pushes the `[mlxclaude]` marker onto a line of its own in a terminal: the marker
    leads and the value's middle is elided; piped, the value is whole."""
    from support.terminal import screen_of

    long_name = "Qwen2.5-Coder-32B-Instruct-abliterated-mlx-4bit-dwq-v2"
    settings = user_settings(tmp_path)
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"MY_OWN": "kept"}}))
    backend = ScriptedBackend(lambda chat: "hi", context_length=65536, name=long_name)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        monkeypatch.setenv("MLXCLAUDE_PORT", str(server.port))
        monkeypatch.setenv("MLXCLAUDE_AUTH_TOKEN", TOKEN)
        assert run_cli("settings", "wire").code == 0
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # not beside MLXCLAUDE_HOME's `mlxclaude` folder: `python -c` imports from cwd
    code, lines = screen_of(["settings", "show"], columns=80)
    assert code == 0, lines
    first_row = next(index for index, line in enumerate(lines) if line.startswith("  ["))
    rows = lines[first_row:]  # (the path above them may wrap: it stays whole, to copy)
    assert len(rows) >= 15 and all(len(line) <= 80 for line in lines)
    assert all(line.lstrip().startswith("[") for line in rows), rows  # no wrapped continuation lines
    model = [line for line in rows if " ANTHROPIC_MODEL " in line][0]
    assert model.lstrip().startswith("[mlxclaude]") and "\u2026" in model
    piped = run_cli("settings", "show").out
    assert '"claude-local-qwen2-5-coder-32b-instruct-abliterated-mlx-4bit-dwq-v2"' in piped, piped
