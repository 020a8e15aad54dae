"""A long prefill is never silent: `prefill_progress` log lines every interval, and GET /mlxclaude/status (and
`mlxclaude status`) show the request in flight with its phase, percent and tok/s, and what waits behind it.

The real MLX engine on the tiny model, with a small prefill step and each prefill chunk slowed down a little,
so a prompt of a few hundred tokens takes a second or two to go in."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from mlxclaude import logs
from mlxclaude.daemon import client
from mlxclaude.daemon.state import DaemonState, write_state
from support.cli_app import run_cli
from support.daemon_env import fake_daemon
from support.live_server import live_server
from support.waiting import wait_for

pytestmark = pytest.mark.mlx
TOKEN = "progress-token"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
STEP = 16
CHUNK_DELAY = 0.03


class SlowPrefill:
    """The model, with every prefill chunk (more than one token at once) taking at least CHUNK_DELAY longer."""

    def __init__(self, model) -> None:
        self._model = model

    def __call__(self, inputs, *args, **kwargs):
        if inputs.shape[-1] > 1:
            time.sleep(CHUNK_DELAY)
        return self._model(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    def load():
        from mlxclaude.engine.mlx_backend import MlxBackend

        backend = MlxBackend(str(tiny_model_dir), prefill_step_size=STEP)
        backend.model = SlowPrefill(backend.model)
        return backend

    # one at a time: the second request waits behind the first (tests/server/test_batching.py: batched)
    with live_server(load, auth_token=TOKEN, max_batch=1) as live:
        live.app.state.mlxclaude.progress_interval = 0.2
        yield live


def body(text: str, max_tokens: int = 2) -> dict:
    """A main request (it has tools), or a probe with max_tokens=1."""
    return {"model": "claude-x", "max_tokens": max_tokens, "stream": True, "temperature": 0.0, "tools": [BASH],
            "messages": [{"role": "user", "content": text}]}


def long_text(topic: str, lines: int = 40) -> str:
    """A prompt of several hundred tokens; a new topic each time, so the prompt cache holds none of it."""
    return f"About {topic}:\n" + "\n".join(f"line {i}: {topic} failed again at step {i}" for i in range(lines))


def post(server, payload: dict, session: str, results: list) -> threading.Thread:
    def send() -> None:
        with httpx.Client(timeout=120) as http:
            response = http.post(f"{server.url}/v1/messages", json=payload,
                                 headers={"x-api-key": TOKEN, "x-claude-code-session-id": session})
            results.append((response.status_code, response.headers.get("request-id")))

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_long_prefill_logs_its_progress_and_status_shows_it(server, tmp_path):
    log_file = tmp_path / "daemon.jsonl"
    logs.configure(log_file, echo=False)
    try:
        results: list = []
        first = post(server, body(long_text("the build")), "session-one", results)

        def in_prefill():
            status = client.status(server.url, TOKEN)
            running = [entry for entry in status["in_flight"] if entry["phase"] == "prefill"]
            return (status, running[0]) if running and 0 < running[0]["percent"] < 100 else None

        status, entry = wait_for(in_prefill)
        assert entry["request_kind"] == "main" and entry["session"] == "session-one" and entry["stream"] is True
        assert entry["prompt_tokens"] > 10 * STEP
        assert entry["prefill_total"] == entry["prompt_tokens"] - entry["cached_tokens"] > 10 * STEP
        assert 0 < entry["prefill_done"] < entry["prefill_total"] and entry["age_s"] >= 0
        assert status["busy"] is True and status["queued"] == 0

        second = post(server, body("and one word more", max_tokens=1), "session-two", results)
        queued = wait_for(lambda: (lambda s: s if s["queued"] == 1 else None)(client.status(server.url, TOKEN)))
        assert [item["phase"] for item in queued["in_flight"]][1:] == ["queued"]
        waiting = queued["in_flight"][1]
        assert waiting["session"] == "session-two" and waiting["request_kind"] == "probe" and "percent" not in waiting

        first.join(120)
        second.join(120)
        assert [code for code, _ in results] == [200, 200]
        idle = client.status(server.url, TOKEN)
        assert idle["in_flight"] == [] and idle["queued"] == 0 and idle["busy"] is False
    finally:
        logs.configure(None)

    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    first_id = next(r["request_id"] for r in records if r["event"] == "request_start" and r["session"] == "session-one")
    progress = [r for r in records if r["event"] == "prefill_progress"]
    assert len(progress) >= 2 and {r["request_id"] for r in progress} == {first_id}  # the short one logs none
    done = [r["prefill_done"] for r in progress]
    assert done == sorted(done) and all(0 < r["percent"] < 100 for r in progress)
    for r in progress:
        assert r["session"] == "session-one" and r["request_kind"] == "main" and r["kind"] == "request"
        assert r["prefill_total"] == r["prompt_tokens"] - r["cached_tokens"] and r["prefill_tps"] > 0
        assert r["elapsed_s"] > 0 and r["eta_s"] >= 0
    gaps = [b["ts"] - a["ts"] for a, b in zip(progress, progress[1:])]
    assert all(gap >= 0.15 for gap in gaps)  # every interval (0.2 s here), not every chunk
    order = [r["event"] for r in records if r.get("request_id") == first_id]
    assert order[0] == "request_start" and order[-1] == "request_finish"


def test_mlxclaude_status_shows_the_request_in_flight(server):
    results: list = []
    with fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url=server.url, host="127.0.0.1", port=server.port,
                                model="tiny", token=TOKEN))
        thread = post(server, body(long_text("the deploy")), "5f1d2c3b-aaaa", results)
        wait_for(lambda: any(entry["phase"] == "prefill" and entry["percent"] > 0
                             for entry in client.status(server.url, TOKEN)["in_flight"]))
        code, out, _ = run_cli("status", env={"COLUMNS": "80"})
        as_json = run_cli("status", "--json")
        thread.join(120)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("in flight"))
    head, phase = lines[at], lines[at + 1]
    assert head.split()[2:4] == ["main,", f"{json.loads(as_json.out)['in_flight'][0]['prompt_tokens']:,}"]
    assert "session 5f1d2c3b" in head
    assert phase.split()[:2] == ["prefill"] + [phase.split()[1]] and phase.split()[1].endswith("%")
    assert "tok/s" in phase and "left" in phase
    entries = json.loads(as_json.out)["in_flight"]
    assert entries and entries[0]["request_kind"] == "main"
