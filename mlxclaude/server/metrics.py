"""Prometheus metrics: what the server counts, and GET /metrics in the Prometheus text format.

Each app owns one `Metrics` with its own CollectorRegistry (never prometheus_client's global default
registry: the tests build many apps in one process). The gauges that describe the present (queue depth,
which backends are up) are read through callables at scrape time, so nothing has to keep them current.

The metric names are a public interface (docs/grafana-dashboard.json is built on them):

- mlxclaude_requests_total{backend,model,kind,status}   status: ok, error, cancelled or an HTTP status ("429")
- mlxclaude_tokens_total{backend,direction}               direction: input, output, cached
- mlxclaude_prompt_cache_tokens_total{result}             result: hit, miss, partial
- mlxclaude_ttft_seconds{backend}                         histogram
- mlxclaude_decode_tokens_per_second{backend}             histogram
- mlxclaude_queue_depth                                   gauge
- mlxclaude_backend_up{backend}                           gauge, 1 or 0
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger(__name__)

# The classic text format (what generate_latest writes). prometheus_client >= 0.22 calls it
# CONTENT_TYPE_PLAIN_0_0_4; older releases call it CONTENT_TYPE_LATEST, hence the literal.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

MAX_MODELS = 100  # distinct `model` label values; later ones are counted as OTHER_MODEL
OTHER_MODEL = "other"

# A local model's first token can take minutes on a long prompt (a cold prefill of 100k tokens).
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DECODE_TPS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0)

CACHE_RESULTS = frozenset({"hit", "miss"})

METRIC_NAMES = frozenset({
    "mlxclaude_requests_total",
    "mlxclaude_tokens_total",
    "mlxclaude_prompt_cache_tokens_total",
    "mlxclaude_ttft_seconds",
    "mlxclaude_decode_tokens_per_second",
    "mlxclaude_spec_tokens_total",
    "mlxclaude_decode_steps_total",
    "mlxclaude_queue_depth",
    "mlxclaude_backend_up",
})


class _LiveGauges:
    """A custom collector: the gauges read from the app's state at scrape time."""

    def __init__(self, queue_depth: Callable[[], int], backend_up: Callable[[], Mapping[str, bool]]) -> None:
        self._queue_depth = queue_depth
        self._backend_up = backend_up

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("mlxclaude_queue_depth", "Requests waiting for the engine")
        yield GaugeMetricFamily("mlxclaude_backend_up", "Whether a backend can serve (1) or not (0)", labels=["backend"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("mlxclaude_queue_depth", "Requests waiting for the engine")
        try:
            depth.add_metric([], float(self._queue_depth()))
        except Exception:  # a scrape never fails for one bad reading
            log.exception("metrics: reading the queue depth failed")
        yield depth
        up = GaugeMetricFamily("mlxclaude_backend_up", "Whether a backend can serve (1) or not (0)", labels=["backend"])
        try:
            for backend, is_up in sorted(dict(self._backend_up()).items()):
                up.add_metric([str(backend)], 1.0 if is_up else 0.0)
        except Exception:
            log.exception("metrics: reading which backends are up failed")
        yield up


class _WithoutCreated:
    """The registry's families less their `_created` samples (the time each series began): noise on a
    dashboard, and not among the documented names. prometheus_client only turns them off process-wide."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family


class Metrics:
    """One CollectorRegistry per app (never the global default registry: tests build many apps)."""

    def __init__(self, *, queue_depth: Callable[[], int], backend_up: Callable[[], Mapping[str, bool]]) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._models: set[str] = set()
        # prometheus_client appends _total to a Counter's name itself
        self.requests = Counter("mlxclaude_requests", "Messages requests finished",
                                ["backend", "model", "kind", "status"], registry=self.registry)
        self.tokens = Counter("mlxclaude_tokens", "Tokens read (input, cached) and written (output)",
                              ["backend", "direction"], registry=self.registry)
        self.cache_tokens = Counter("mlxclaude_prompt_cache_tokens",
                                    "Prompt tokens reused from the cache (hit, partial) or prefilled (miss)",
                                    ["result"], registry=self.registry)
        self.ttft = Histogram("mlxclaude_ttft_seconds", "Time to the first output token",
                              ["backend"], buckets=TTFT_BUCKETS, registry=self.registry)
        self.decode_tps = Histogram("mlxclaude_decode_tokens_per_second", "Decode speed of a request",
                                    ["backend"], buckets=DECODE_TPS_BUCKETS, registry=self.registry)
        self.spec_tokens = Counter("mlxclaude_spec_tokens", "Speculative decoding: drafted tokens the model "
                                   "accepted or rejected", ["result"], registry=self.registry)
        self.decode_steps = Counter("mlxclaude_decode_steps", "Forward passes that produced output tokens",
                                    registry=self.registry)
        self.registry.register(_LiveGauges(queue_depth, backend_up))

    def _model_label(self, model: str) -> str:
        with self._lock:
            if model in self._models:
                return model
            if len(self._models) < MAX_MODELS:
                self._models.add(model)
                return model
        return OTHER_MODEL

    def request_finished(self, *, backend: str, model: str, kind: str, status: str,
                         input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0,
                         ttft_s: float | None = None, decode_tps: float | None = None) -> None:
        """Count one finished request: its outcome, its tokens and, when known, its speed."""
        self.requests.labels(backend, self._model_label(model), kind, str(status)).inc()
        for direction, count in (("input", input_tokens), ("output", output_tokens), ("cached", cached_tokens)):
            if count > 0:
                self.tokens.labels(backend, direction).inc(count)
        if ttft_s is not None and ttft_s >= 0:
            self.ttft.labels(backend).observe(ttft_s)
        if decode_tps is not None and decode_tps >= 0:
            self.decode_tps.labels(backend).observe(decode_tps)

    def decoded(self, *, steps: int, drafted: int, accepted: int) -> None:
        """A request's decode: its forward passes and its drafted tokens, accepted or rejected."""
        if steps > 0:
            self.decode_steps.inc(steps)
        for result, count in (("accepted", accepted), ("rejected", drafted - accepted)):
            child = self.spec_tokens.labels(result)
            if count > 0:
                child.inc(count)

    def prompt_cache(self, result: str, tokens: int) -> None:
        """Tokens reused from the prompt cache ("hit") or prefilled for want of it ("miss")."""
        if result not in CACHE_RESULTS:
            raise ValueError(f"prompt cache result {result!r} is not one of {sorted(CACHE_RESULTS)}")
        child = self.cache_tokens.labels(result)
        if tokens > 0:
            child.inc(tokens)

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE  # type: ignore[arg-type]


async def metrics_route(request: Request) -> Response:
    """GET /metrics: the app's `Metrics` (request.app.state.metrics) in the Prometheus text format."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return PlainTextResponse("metrics are not enabled\n", status_code=404)
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
