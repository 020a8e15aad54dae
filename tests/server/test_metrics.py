"""Prometheus metrics without a model: what `Metrics` counts, the exposed names and labels, the gauges read
at scrape time, GET /metrics on a small app, and the Grafana dashboard built on exactly these names."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from mlxclaude.server.metrics import MAX_MODELS, METRIC_NAMES, OTHER_MODEL, Metrics, metrics_route

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def make(queue=lambda: 0, up=lambda: {"mlx": True}) -> Metrics:
    return Metrics(queue_depth=queue, backend_up=up)


def samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Exposed sample name -> [(labels, value)], parsed back from the rendered text."""
    body, _ = metrics.render()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = [v for got, v in samples(metrics).get(name, []) if got == labels]
    assert len(found) == 1, (name, labels, samples(metrics).get(name))
    return found[0]


def test_exposed_names_are_exactly_the_documented_ones():
    metrics = make()
    metrics.request_finished(backend="mlx", model="m", kind="main", status="ok", input_tokens=1, output_tokens=1,
                             cached_tokens=1, ttft_s=1.0, decode_tps=10.0)
    metrics.prompt_cache("hit", 5)
    body, content_type = metrics.render()
    families = {family.name for family in text_string_to_metric_families(body.decode())}
    # the parser drops a counter's _total from the family name; the samples keep it
    assert families == {"mlxclaude_requests", "mlxclaude_tokens", "mlxclaude_prompt_cache_tokens",
                        "mlxclaude_ttft_seconds", "mlxclaude_decode_tokens_per_second",
                        "mlxclaude_spec_tokens", "mlxclaude_decode_steps",
                        "mlxclaude_queue_depth", "mlxclaude_backend_up"}
    text = body.decode()
    assert set(re.findall(r"^# TYPE (\S+) ", text, re.M)) == METRIC_NAMES
    assert "_created" not in text
    assert re.search(r"^mlxclaude_requests_total\{", text, re.M)
    assert re.search(r"^mlxclaude_tokens_total\{", text, re.M)
    assert re.search(r"^mlxclaude_prompt_cache_tokens_total\{", text, re.M)
    assert not any(name.startswith("python_") or name.startswith("process_") for name in families)
    assert content_type.startswith("text/plain; version=0.0.4")


def test_requests_and_tokens_are_counted_by_their_labels():
    metrics = make()
    metrics.request_finished(backend="mlx", model="claude-sonnet-4-5", kind="main", status="ok",
                             input_tokens=1000, output_tokens=50, cached_tokens=800)
    metrics.request_finished(backend="mlx", model="claude-sonnet-4-5", kind="main", status="ok",
                             input_tokens=200, output_tokens=10, cached_tokens=0)
    metrics.request_finished(backend="mlx", model="claude-haiku-4-5", kind="title", status="cancelled")
    metrics.request_finished(backend="upstream", model="claude-sonnet-4-5", kind="main", status="429",
                             input_tokens=7)
    req = "mlxclaude_requests_total"
    assert value(metrics, req, backend="mlx", model="claude-sonnet-4-5", kind="main", status="ok") == 2
    assert value(metrics, req, backend="mlx", model="claude-haiku-4-5", kind="title", status="cancelled") == 1
    assert value(metrics, req, backend="upstream", model="claude-sonnet-4-5", kind="main", status="429") == 1
    assert len(samples(metrics)[req]) == 3
    tok = "mlxclaude_tokens_total"
    assert value(metrics, tok, backend="mlx", direction="input") == 1200
    assert value(metrics, tok, backend="mlx", direction="output") == 60
    assert value(metrics, tok, backend="mlx", direction="cached") == 800
    assert value(metrics, tok, backend="upstream", direction="input") == 7
    assert {(labels["backend"], labels["direction"]) for labels, _ in samples(metrics)[tok]} == \
        {("mlx", "input"), ("mlx", "output"), ("mlx", "cached"), ("upstream", "input")}


def test_histograms_count_observations_into_their_buckets():
    metrics = make()
    for ttft in (0.05, 0.3, 4.0, 700.0):
        metrics.request_finished(backend="mlx", model="m", kind="main", status="ok", ttft_s=ttft, decode_tps=25.0)
    metrics.request_finished(backend="mlx", model="m", kind="main", status="error")  # no speed: nothing observed
    assert value(metrics, "mlxclaude_ttft_seconds_count", backend="mlx") == 4
    assert value(metrics, "mlxclaude_ttft_seconds_sum", backend="mlx") == pytest.approx(704.35)
    buckets = {labels["le"]: v for labels, v in samples(metrics)["mlxclaude_ttft_seconds_bucket"]}
    assert (buckets["0.1"], buckets["0.5"], buckets["5.0"], buckets["600.0"], buckets["+Inf"]) == (1, 2, 3, 3, 4)
    assert float(min((le for le in buckets if le != "+Inf"), key=float)) == 0.1
    assert max(float(le) for le in buckets if le != "+Inf") == 600
    tps = {labels["le"]: v for labels, v in samples(metrics)["mlxclaude_decode_tokens_per_second_bucket"]}
    assert (tps["1.0"], tps["20.0"], tps["30.0"], tps["500.0"], tps["+Inf"]) == (0, 0, 4, 4, 4)
    assert value(metrics, "mlxclaude_decode_tokens_per_second_count", backend="mlx") == 4


def test_prompt_cache_tokens_by_result():
    metrics = make()
    metrics.prompt_cache("hit", 900)
    metrics.prompt_cache("miss", 1200)
    metrics.prompt_cache("hit", 100)
    name = "mlxclaude_prompt_cache_tokens_total"
    assert value(metrics, name, result="hit") == 1000
    assert value(metrics, name, result="miss") == 1200
    for unknown in ("maybe", "partial"):  # a partial hit counts its reused tokens as hit, the rest as miss
        with pytest.raises(ValueError):
            metrics.prompt_cache(unknown, 1)


def test_model_label_is_capped_at_a_hundred_values():
    metrics = make()
    for i in range(MAX_MODELS + 5):
        metrics.request_finished(backend="mlx", model=f"model-{i}", kind="main", status="ok")
    metrics.request_finished(backend="mlx", model="model-0", kind="main", status="ok")  # a known one stays itself
    metrics.request_finished(backend="mlx", model="model-200", kind="main", status="ok")
    got = {labels["model"]: v for labels, v in samples(metrics)["mlxclaude_requests_total"]}
    assert len(got) == MAX_MODELS + 1
    assert got["model-0"] == 2 and got[f"model-{MAX_MODELS - 1}"] == 1
    assert f"model-{MAX_MODELS}" not in got and got[OTHER_MODEL] == 6


def test_gauges_are_read_at_scrape_time():
    depth = [0]
    up = {"mlx": True, "upstream": False}
    metrics = make(queue=lambda: depth[0], up=lambda: dict(up))
    assert value(metrics, "mlxclaude_queue_depth") == 0
    depth[0] = 3
    assert value(metrics, "mlxclaude_queue_depth") == 3
    assert value(metrics, "mlxclaude_backend_up", backend="mlx") == 1
    assert value(metrics, "mlxclaude_backend_up", backend="upstream") == 0
    assert len(samples(metrics)["mlxclaude_backend_up"]) == 2
    up["upstream"] = True
    up["third"] = False
    assert {labels["backend"]: v for labels, v in samples(metrics)["mlxclaude_backend_up"]} == \
        {"mlx": 1, "upstream": 1, "third": 0}


def test_a_failing_reading_leaves_the_rest_of_the_scrape():
    def broken():
        raise RuntimeError("gone")

    metrics = make(queue=broken, up=broken)
    metrics.request_finished(backend="mlx", model="m", kind="main", status="ok")
    got = samples(metrics)
    assert "mlxclaude_queue_depth" not in got and "mlxclaude_backend_up" not in got
    assert value(metrics, "mlxclaude_requests_total", backend="mlx", model="m", kind="main", status="ok") == 1


def test_apps_have_separate_registries():
    first, second = make(), make()
    first.request_finished(backend="mlx", model="m", kind="main", status="ok")
    assert "mlxclaude_requests_total" not in samples(second)


def test_metrics_route_on_an_app():
    app = FastAPI()
    app.add_api_route("/metrics", metrics_route, methods=["GET"])
    app.state.metrics = make(queue=lambda: 2)
    app.state.metrics.request_finished(backend="mlx", model="m", kind="main", status="ok", output_tokens=5)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/metrics")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["mlxclaude_queue_depth"].samples[0].value == 2
    assert 'mlxclaude_tokens_total{backend="mlx",direction="output"} 5.0' in response.text

    bare = FastAPI()
    bare.add_api_route("/metrics", metrics_route, methods=["GET"])
    app = bare
    assert asyncio.run(get()).status_code == 404


def dashboard_exprs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return own + [expr for child in node.values() for expr in dashboard_exprs(child)]
    if isinstance(node, list):
        return [expr for child in node for expr in dashboard_exprs(child)]
    return []


def test_grafana_dashboard_uses_only_the_exposed_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    assert [entry["name"] for entry in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["schemaVersion"] >= 36
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 7
    allowed = METRIC_NAMES | {name + suffix for name in ("mlxclaude_ttft_seconds", "mlxclaude_decode_tokens_per_second")
                              for suffix in ("_bucket", "_sum", "_count")}
    used = {name for expr in exprs for name in re.findall(r"\bmlxclaude_[a-z_]+", expr)}
    assert used and used <= allowed, used - allowed
    assert METRIC_NAMES <= {name.removesuffix("_bucket") for name in used}  # every metric has a panel
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
