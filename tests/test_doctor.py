"""`mlxclaude doctor`: every check present, statuses that make sense, the --json shape and the exit code."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlxclaude import doctor, paths
from mlxclaude.config.registry import ServerSettings
from mlxclaude.config.token import local_token
from mlxclaude.daemon import state
from mlxclaude.doctor import GIB, check_claude_settings, check_daemon, check_memory, check_model, check_python
from mlxclaude.engine.memory import MemoryFacts
from support.cli_app import run_cli
from support.routes_toml import routes_toml
from support.upstreams import Answer, recording_upstream

NAMES = ["config", "python", "mlx", "memory", "model", "web search", "daemon", "claude", "claude settings"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("MLXCLAUDE_", "CLAUDE_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return tmp_path


@pytest.fixture
def fake_claude(isolated, monkeypatch):
    script = isolated / "bin" / "claude"
    script.write_text("#!/bin/sh\necho '2.0.14 (Claude Code)'\n")
    script.chmod(0o755)
    return script


def make_model(root, *, config=True, weights=True, tokenizer=True):
    root.mkdir(parents=True)
    if config:
        (root / "config.json").write_text(json.dumps({"model_type": "qwen2", "quantization": {"bits": 4}}))
    if weights:
        (root / "model.safetensors").write_bytes(b"\0" * 4096)
    if tokenizer:
        (root / "tokenizer.json").write_text("{}")
    return root


def by_name(checks):
    return {check.name: check for check in checks}


# --- one check at a time -------------------------------------------------------------------------


def test_python_version():
    assert check_python((3, 11, 4)).status == "ok"
    old = check_python((3, 10, 12))
    assert old.status == "fail" and "3.11" in old.fix


def test_memory_thresholds():
    assert check_memory(MemoryFacts(64 * GIB, 40 * GIB)).status == "ok"
    assert "64.0 GiB total, 40.0 GiB available" in check_memory(MemoryFacts(64 * GIB, 40 * GIB)).detail
    assert check_memory(MemoryFacts(4 * GIB, 3 * GIB)).status == "warn"
    assert check_memory(MemoryFacts(32 * GIB, 1 * GIB)).status == "warn"
    assert check_memory(MemoryFacts(None, None)).status == "warn"
    assert check_memory().status in ("ok", "warn")  # this machine's own figures


def test_model_checks_without_loading_weights(isolated):
    assert check_model(None).status == "warn"
    good = check_model(str(make_model(isolated / "m1")), total_memory=64 * GIB)
    assert good.status == "ok" and "qwen2" in good.detail and "4-bit" in good.detail
    assert check_model(str(make_model(isolated / "m2", config=False))).status == "fail"
    assert check_model(str(make_model(isolated / "m3", weights=False))).status == "fail"
    assert check_model(str(make_model(isolated / "m4", tokenizer=False))).status == "fail"
    too_big = check_model(str(isolated / "m1"), total_memory=4096)
    assert too_big.status == "warn" and "smaller" in too_big.fix
    missing = check_model("org/not-pulled")
    assert missing.status == "fail" and missing.fix == "mlxclaude models pull org/not-pulled"


def test_model_in_the_hugging_face_cache(isolated):
    repo = isolated / "hf" / "models--org--tiny"
    make_model(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert check_model("org/tiny", total_memory=64 * GIB).status == "ok"


def test_daemon_not_running_is_fine():
    check = check_daemon()
    assert check.status == "ok" and "not running" in check.detail


def write_state(url: str, pid: int) -> None:
    port = int(url.rsplit(":", 1)[1])
    state.write_state(state.DaemonState(pid=pid, url=url, host="127.0.0.1", port=port, model="tiny"))


class Health(BaseHTTPRequestHandler):
    reply = (200, {"status": "ok", "model": "tiny"})

    def do_GET(self):
        code, body = self.reply
        data = json.dumps(body).encode()
        self.send_response(code if self.path == "/health" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("reply, status, words", [
    ((200, {"status": "ok", "model": "tiny"}), "ok", "running at"),
    ((503, {"status": "loading"}), "ok", "loading tiny"),
    ((503, {"status": "failed", "error": "weights are corrupt"}), "fail", "weights are corrupt"),
])
def test_daemon_health(health_server, monkeypatch, reply, status, words):
    monkeypatch.setattr(Health, "reply", reply)
    write_state(f"http://127.0.0.1:{health_server.server_address[1]}", os.getpid())
    check = check_daemon()
    assert check.status == status and words in check.detail


def test_daemon_stale_state_file(health_server):
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    write_state(f"http://127.0.0.1:{port}", 2**22 + 12345)
    check = check_daemon(timeout=0.5)
    assert check.status == "warn" and "stale" in check.detail
    paths.state_file().write_text("{not json")
    assert check_daemon().status == "warn"


def test_claude_found_with_its_version(fake_claude):
    check = doctor.check_claude(os.environ)
    assert check.status == "ok" and "2.0.14 (Claude Code)" in check.detail


def test_claude_missing_or_broken(isolated, monkeypatch):
    assert doctor.check_claude(os.environ).status == "fail"
    broken = isolated / "bin" / "claude"
    broken.write_text("#!/bin/sh\necho 'no node' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(broken))
    check = doctor.check_claude(os.environ)
    assert check.status == "warn" and "no node" in check.detail


def write_claude_settings(directory, env):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "settings.json").write_text(json.dumps({"env": env, "model": "sonnet"}))


def test_claude_settings_wired_or_not(isolated, monkeypatch):
    home_settings = isolated / "user" / ".claude"
    settings = ServerSettings()
    check = check_claude_settings(settings)
    assert check.status == "ok" and check.detail.startswith("not wired")

    token = local_token()
    write_claude_settings(home_settings, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8765",
                                          "ANTHROPIC_AUTH_TOKEN": token})
    check = check_claude_settings(settings)
    assert check.status == "ok" and check.detail.startswith("wired")

    write_claude_settings(home_settings, {"ANTHROPIC_BASE_URL": "http://localhost:9999",
                                          "ANTHROPIC_AUTH_TOKEN": token})
    check = check_claude_settings(settings)
    assert check.status == "warn" and "9999" in check.detail and "8765" in check.fix

    write_claude_settings(home_settings, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8765",
                                          "ANTHROPIC_AUTH_TOKEN": "wrong"})
    assert check_claude_settings(settings).status == "warn"

    other = isolated / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(other))
    assert check_claude_settings(settings).detail.startswith("not wired")
    write_claude_settings(other, {"ANTHROPIC_BASE_URL": "https://api.example.com"})
    check = check_claude_settings(settings)
    assert check.status == "ok" and "not mlxclaude" in check.detail
    (other / "settings.json").write_text("{")
    assert check_claude_settings(settings).status == "warn"


def test_claude_settings_read_as_mlxclaude_settings_reads_them(isolated):
    """A byte-order mark is fine (Claude Code and `mlxclaude settings` accept it); an "env" that is not an
    object is the same one-line error `mlxclaude settings` gives."""
    home_settings = isolated / "user" / ".claude"
    home_settings.mkdir(parents=True)
    data = {"env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8765", "ANTHROPIC_AUTH_TOKEN": local_token()}}
    (home_settings / "settings.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    check = check_claude_settings(ServerSettings())
    assert check.status == "ok" and check.detail.startswith("wired"), check
    (home_settings / "settings.json").write_text(json.dumps({"env": ["not", "an", "object"]}))
    check = check_claude_settings(ServerSettings())
    assert check.status == "warn" and '"env" must be an object' in check.detail


def test_malformed_config_fails_the_config_check():
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text("port = = 1\n")
    checks = by_name(doctor.run_checks())
    assert checks["config"].status == "fail" and "line 1" in checks["config"].detail
    assert checks["model"].status == "warn"


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def cli():
    return lambda *args: run_cli(*args, env={"COLUMNS": "160"})


def test_json_shape_and_failure_exit(cli):
    result = cli("doctor", "--json")
    data = json.loads(result.out)
    assert set(data) == {"ok", "checks"}
    assert [check["name"] for check in data["checks"]] == NAMES
    for check in data["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        if check["status"] != "ok":
            assert check["fix"], check
    checks = {check["name"]: check for check in data["checks"]}
    assert checks["python"]["status"] == "ok"
    assert checks["claude"]["status"] == "fail"  # no claude on the test PATH
    assert data["ok"] is False and result.code == 1


def test_all_good_exits_zero(cli, fake_claude, isolated):
    pytest.importorskip("mlx.core")
    model = make_model(isolated / "model")
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text(f'model = "{model}"\n')
    result = cli("doctor")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    for name in NAMES:
        assert any(name in line for line in lines), name
    assert "2.0.14 (Claude Code)" in result.out
    assert "fail" not in [line.split()[0] for line in lines if line.strip()]


def test_text_output_shows_the_fix(cli):
    result = cli("doctor")
    assert result.code == 1
    assert "fix: npm install -g @anthropic-ai/claude-code" in result.out
    assert "failure" in result.err


# --- backends and routes -------------------------------------------------------------------------


@pytest.fixture
def models_server():
    """An OpenAI-style /v1/models that wants `Bearer KEY` while `server.key[0]` is set."""
    key: list = [None]

    def script(request):
        if key[0] and request.headers.get("authorization") != f"Bearer {key[0]}":
            return Answer(401, {"error": {"message": "bad key"}})
        if request.path == "/v1/models":
            return Answer(body={"object": "list", "data": [{"id": "big-model"}, {"id": "other"}]})
        return Answer(404, {})

    with recording_upstream(script) as server:
        server.key = key
        yield server


def routed_config(isolated, url: str, *, small: str) -> str:
    return routes_toml(main=str(make_model(isolated / "main-model")), small=small, gpu_url=f"{url}/v1")


def write_config(text: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text)


def test_backends_each_checked_after_the_routes(isolated, models_server, monkeypatch):
    models_server.key[0] = "sekrit-value"
    monkeypatch.setenv("GPU_API_KEY", "sekrit-value")
    small = make_model(isolated / "small-model")
    write_config(routed_config(isolated, models_server.url, small=str(small)))
    checks = by_name(doctor.run_checks())
    names = [check.name for check in doctor.run_checks()]
    assert names[names.index("model") + 1:names.index("web search")] == ["routes", "backend small", "backend gpu"]
    assert checks["routes"].status == "ok"
    assert checks["routes"].detail == "*haiku* → small, *opus* → gpu, * → local"
    assert checks["backend small"].status == "ok" and str(small) in checks["backend small"].detail
    gpu = checks["backend gpu"]
    assert gpu.status == "ok" and "reachable (2 models)" in gpu.detail and "big-model" in gpu.detail
    assert ("/v1/models", "Bearer sekrit-value") in [(request.path, request.headers.get("authorization"))
                                                     for request in models_server.requests]
    assert all("sekrit" not in repr(check) for check in checks.values())


def test_a_missing_model_an_unset_key_and_a_refusal(isolated, models_server, monkeypatch):
    models_server.key[0] = "sekrit-value"
    monkeypatch.delenv("GPU_API_KEY", raising=False)
    write_config(routed_config(isolated, models_server.url, small="org/not-pulled"))
    checks = by_name(doctor.run_checks())
    small = checks["backend small"]
    assert small.status == "fail" and "org/not-pulled: not found locally" in small.detail
    assert small.fix == "mlxclaude models pull org/not-pulled"
    gpu = checks["backend gpu"]
    assert gpu.status == "fail" and "refused the key (HTTP 401" in gpu.detail
    assert "$GPU_API_KEY is not set" in gpu.detail
    assert gpu.fix.startswith("export GPU_API_KEY=")
    models_server.key[0] = None   # a server that wants no key: reachable, the unset variable warns
    gpu = by_name(doctor.run_checks())["backend gpu"]
    assert gpu.status == "warn" and "reachable" in gpu.detail and "GPU_API_KEY" in gpu.fix


def test_an_unreachable_backend_fails_with_the_reason(isolated, monkeypatch):
    from support.live_server import free_port

    monkeypatch.setenv("GPU_API_KEY", "sekrit-value")
    url = f"http://127.0.0.1:{free_port()}"
    write_config(routed_config(isolated, url, small=str(make_model(isolated / "small-model"))))
    gpu = by_name(doctor.run_checks())["backend gpu"]
    assert gpu.status == "fail" and f"cannot reach {url}/v1/models" in gpu.detail
    assert url in gpu.fix and "sekrit" not in gpu.detail + gpu.fix


def test_bad_routes_are_a_failed_check_with_the_hint(isolated, cli, models_server):
    write_config(routed_config(isolated, models_server.url, small="org/x").replace('"*opus*" = "gpu"',
                                                                                '"*opus*" = "gpus"'))
    checks = by_name(doctor.run_checks())
    assert checks["routes"].status == "fail" and "no backend named 'gpus'" in checks["routes"].detail
    assert "did you mean 'gpu'?" in checks["routes"].fix
    assert not any(name.startswith("backend ") for name in checks)
    result = cli("doctor")
    assert result.code == 1 and "no backend named 'gpus'" in result.out


def test_no_routing_tables_no_routing_checks(isolated):
    write_config(f'model = "{make_model(isolated / "main-model")}"\n')
    assert [check.name for check in doctor.run_checks()] == NAMES


def test_web_search_check_runs_a_search_on_the_provider():
    from mlxclaude.doctor.web_search import check_web_search
    from support.upstreams import Answer, recording_upstream

    assert check_web_search({}).status == "warn"
    assert check_web_search({"web_search": {"provider": "bing"}}).status == "fail"
    with recording_upstream(lambda request: Answer(body={"results": [{"url": "https://a.example", "title": "a"}]})) \
            as upstream:
        ok = check_web_search({"web_search": {"provider": "searxng", "url": upstream.url}})
    assert ok.status == "ok" and "found 1 results" in ok.detail and upstream.requests[0].query["q"] == ["mlxclaude"]
    with recording_upstream(lambda request: Answer(status=503, body={})) as upstream:
        down = check_web_search({"web_search": {"provider": "searxng", "url": upstream.url}})
    assert down.status == "fail" and "unavailable" in down.detail
