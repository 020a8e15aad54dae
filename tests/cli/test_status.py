"""`mlxclaude status` with backends and routes: one line per backend with its state, the routes, the fallbacks;
the single-local case is as it was. The daemon is stood in for by manager.status()."""

from __future__ import annotations

import json

import pytest

from mlxclaude.cli.daemon import _cache
from support.cli_app import run_cli

BASE = {"state": "ready", "url": "http://127.0.0.1:8765", "model": "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit",
        "pid": 4242, "uptime_s": 75, "requests_served": 3, "queued": 0}
LOCAL = {"name": "local", "kind": "mlx", "model": "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit", "state": "loaded",
         "default": True, "keep_alive_s": None, "in_flight": 1}
BACKENDS = [
    LOCAL,
    {"name": "small", "kind": "mlx", "model": "mlx-community/Qwen3-4B-Instruct-2507-4bit", "state": "unloaded",
     "keep_alive_s": 600, "in_flight": 0},
    {"name": "gpu", "kind": "openai", "model": "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
     "url": "http://gpu-box:8000/v1", "state": "cooling down", "failures": 2, "cooldown_left_s": 12.5,
     "last_error": "connection refused"},
]
ROUTES = [{"pattern": "*haiku*", "backend": "small"}, {"pattern": "*opus*", "backend": "gpu"},
          {"pattern": "*", "backend": "local"}]


@pytest.fixture
def daemon(monkeypatch):
    from mlxclaude.daemon import manager

    info: dict = {}
    monkeypatch.setattr(manager, "status", lambda: info)
    return info


def status(columns: int = 80):
    result = run_cli("status", env={"COLUMNS": str(columns)})
    assert result.code == 0, result.err
    assert max(len(line) for line in result.out.splitlines()) <= columns
    return result.out


def test_backends_routes_and_fallbacks_each_on_their_lines(daemon):
    daemon.update(BASE, backends=BACKENDS, routes=ROUTES, fallbacks={"gpu": ["local"]})
    out = status(120)
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["backends"].split()[1:5] == ["local", "mlx", LOCAL["model"], "loaded,"]
    assert "1 in flight" in lines["backends"]
    small = next(line for line in out.splitlines() if " small " in line)
    assert small.split()[:4] == ["small", "mlx", "mlx-community/Qwen3-4B-Instruct-2507-4bit", "unloaded"]
    gpu = next(line for line in out.splitlines() if " gpu " in line)
    assert "cooling down 13s, 2 failures (connection refused)" in gpu and "openai" in gpu
    assert lines["routes"].split(None, 1)[1].rstrip() == "*haiku* → small, *opus* → gpu, * → local"
    assert lines["fallbacks"].split(None, 1)[1].rstrip() == "gpu → local"


def test_it_fits_80_columns_and_keeps_the_model_whole(daemon):
    daemon.update(BASE, backends=BACKENDS, routes=ROUTES, fallbacks={"gpu": ["local"]})
    out = status(80)
    assert "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8" in out and "…" not in out


def test_the_state_colours():
    from mlxclaude.cli.daemon import backend_line

    def colour(state: str, **extra) -> str:
        line = backend_line({"name": "b", "kind": "mlx", "model": "m", "state": state, **extra})
        return next(str(span.style) for span in line.spans if line.plain[span.start:span.end].startswith(state))

    assert colour("ok") == colour("loaded") == "green"
    assert colour("loading") == colour("failing") == colour("unloaded") == "yellow"
    assert colour("failed") == colour("cooling down", cooldown_left_s=4.2) == "red"
    assert "cooling down 5s" in backend_line({"name": "gpu", "state": "cooling down", "cooldown_left_s": 4.2}).plain


@pytest.mark.parametrize("extra", [{}, {"backends": [LOCAL], "routes": [{"pattern": "*", "backend": "local"}],
                                        "fallbacks": {}}], ids=["old-daemon", "local-only"])
def test_one_local_backend_shows_as_before(daemon, extra):
    daemon.update(BASE, **extra)
    out = status()
    assert [line.split()[0] for line in out.splitlines() if line.strip()] == [
        "state", "url", "model", "pid", "uptime", "requests", "queued"]


def test_json_passes_the_fields_through(daemon):
    daemon.update(BASE, backends=BACKENDS, routes=ROUTES, fallbacks={"gpu": ["local"]})
    result = run_cli("status", "--json")
    data = json.loads(result.out)
    assert data["backends"] == BACKENDS and data["routes"] == ROUTES and data["fallbacks"] == {"gpu": ["local"]}


def test_the_cache_line_counts_unreadable_files_moved_aside():
    facts = {"entries": 2, "bytes": 2048, "disk": {"directory": "/c", "loaded": 1, "saved": 0, "corrupt": 3}}
    assert _cache(facts) == "2 entries, 2.0 KiB, 3 unreadable files moved to /c/corrupt"
    assert _cache({"entries": 1, "bytes": 0}).startswith("1 entry, ")
    assert _cache({**facts, "disk": {**facts["disk"], "corrupt": 0}}) == "2 entries, 2.0 KiB"


def test_piped_status_has_no_trailing_spaces_and_the_backend_states_line_up(daemon):
    daemon.update(BASE, backends=[{**LOCAL, "model": "qwen-coder-7b"},
                                  {"name": "gpu", "kind": "openai", "model": "qwen-big", "state": "ok"}],
                  routes=ROUTES)
    out = status(120)
    assert all(line == line.rstrip() for line in out.splitlines())
    backend_lines = [line for line in out.splitlines() if " mlx " in line or " openai " in line]
    states = [line.index("loaded") if "loaded" in line else line.index(" ok") + 1 for line in backend_lines]
    assert len(set(states)) == 1, backend_lines


def test_the_batch_line_says_speculation_and_a_mode_that_could_not_run():
    from mlxclaude.cli.daemon import _batch

    spec = {"mode": "auto", "asked": "mtp", "note": "mlx-lm cannot", "drafted": 10, "accepted": 7}
    line = _batch({"mode": "batched", "active": 1, "max_batch": 8, "speculative": spec})
    assert line == "batched, 1 of 8 streams; speculative auto (mtp unavailable): 7 of 10 drafted tokens accepted"
    assert "unavailable" not in _batch({"mode": "batched", "active": 0, "max_batch": 8,
                                       "speculative": {**spec, "asked": None, "note": None}})
