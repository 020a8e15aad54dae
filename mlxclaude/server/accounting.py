"""What a request leaves behind, in one object per request: its log lines (start, fallback, error,
cancel, finish) and its metrics, labelled with the backend and route that served it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.turn import TurnEnd
from mlxclaude.logs import log_event, log_internal_error
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.stream import encode_sse, error_event
from mlxclaude.server.state import ServerState


@dataclass(frozen=True)
class Labels:
    """Which backend serves a request and why: its log fields and metric labels."""
    backend: str
    route: str
    model: str
    kind: str


class RequestAccount:
    """One request's accounting. The route loop names each backend it tries (`attempt`); the target logs the
    start once its turn is under way; the turn reports how it ended: finished, failed or cancelled."""

    def __init__(self, state: ServerState, request_id: str, chat: ChatRequest, model: str, route: str) -> None:
        self.state = state
        self.request_id = request_id
        self.chat = chat
        self.labels = Labels(backend="", route=route, model=model, kind=chat.kind)

    def attempt(self, backend: str) -> None:
        self.labels = replace(self.labels, backend=backend)

    def _fields(self) -> dict[str, Any]:
        return dict(request_id=self.request_id, session=self.chat.session_id, backend=self.labels.backend,
                    route=self.labels.route)

    def started(self, **figures: Any) -> None:
        log_event("request_start", **self._fields(), request_kind=self.chat.kind, model=self.labels.model,
                  stream=self.chat.stream, tools=len(self.chat.tools), **figures)

    def fell_back(self, following: str, error: ApiError) -> None:
        log_event("backend_fallback", level="warning", request_id=self.request_id, backend=self.labels.backend,
                  next=following, error=error.message, route=self.labels.route)

    def failed(self, error: ApiError) -> None:
        log_event("request_error", level="error", **self._fields(), status=error.status, error=error.message)
        self._count(str(error.status))

    def stream_failed(self, error: ApiError) -> bytes:
        """A stream that fails after it began: logged, counted, and the `error` event that ends it."""
        self.failed(error)
        return encode_sse(*error_event(error.error_type, error.message))

    def stream_crashed(self, exc: Exception) -> bytes:
        """A fault of ours mid-stream: logged with its traceback, counted, and the `error` event."""
        log_internal_error("request_error", exc, **self._fields())
        self._count("error")
        return encode_sse(*error_event("api_error", f"generation failed: {exc}"))

    def cancelled(self) -> None:
        """The client went away before the reply ended: logged and counted like any finished request."""
        log_event("request_cancelled", **self._fields(), request_kind=self.chat.kind, status="cancelled")
        self._count("cancelled")

    def finished(self, end: TurnEnd) -> None:
        stats = end.stats
        for raw in end.failed_tool_calls:
            log_event("tool_call_unparsed", level="warning", request_id=self.request_id,
                      session=self.chat.session_id, raw=raw[:2000], note="returned to the client as text")
        fields = dict(
            request_id=self.request_id, session=self.chat.session_id, request_kind=self.chat.kind,
            prompt_tokens=stats.prompt_tokens, cached_tokens=stats.cached_tokens,
            new_tokens=stats.prompt_tokens - stats.cached_tokens, output_tokens=stats.generated_tokens,
            ttft_s=round(stats.ttft_seconds, 3), prefill_tps=round(stats.prefill_tps, 1),
            decode_tps=round(stats.decode_tps, 1), peak_memory_gb=round(stats.peak_memory_gb, 3),
            cache=stats.cache_note or None, stop_reason=end.stop_reason, finish=stats.finish_reason,
            backend=self.labels.backend, route=self.labels.route,
            spec=stats.speculation,
        )
        # the engine's extra facts (prompt cache: reused_tokens, cache_entry, diverged_at/_message/_role, miss_reason)
        fields.update({key: value for key, value in stats.extra.items()
                       if key not in fields and key not in ("kind", "level")})
        log_event("request_finish", kind="perf", **fields)
        self.state.requests_served += 1
        self._count_finish(stats, "cancelled" if stats.finish_reason == "cancelled" else "ok")

    def _count(self, status: str) -> None:
        labels = self.labels
        self.state.metrics.request_finished(backend=labels.backend, model=labels.model, kind=labels.kind,
                                            status=status)

    def _count_finish(self, stats: GenerationStats, status: str) -> None:
        labels, metrics = self.labels, self.state.metrics
        new_tokens = stats.prompt_tokens - stats.cached_tokens
        metrics.request_finished(backend=labels.backend, model=labels.model, kind=labels.kind, status=status,
                                 input_tokens=new_tokens, output_tokens=stats.generated_tokens,
                                 cached_tokens=stats.cached_tokens,
                                 ttft_s=stats.ttft_seconds if stats.generated_tokens else None,
                                 decode_tps=stats.decode_tps or None)
        metrics.decoded(steps=stats.decode_steps, drafted=stats.drafted_tokens, accepted=stats.accepted_tokens)
        if stats.cached_tokens:
            metrics.prompt_cache("hit", stats.cached_tokens)
        if new_tokens > 0:
            metrics.prompt_cache("miss", new_tokens)
