"""What a finished or failed request leaves behind: its log line and its metrics, labelled with the backend
and route that served it."""

from __future__ import annotations

from dataclasses import dataclass

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.logs import log_event
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.stream import encode_sse, error_event
from mlxclaude.server.state import ServerState
from mlxclaude.server.turn import TurnEnd


@dataclass(frozen=True)
class Labels:
    """Which backend serves a request and why: its log fields and metric labels."""
    backend: str
    route: str
    model: str
    kind: str


def record_status(state: ServerState, labels: Labels, status: str) -> None:
    """A request that ended without a reply's figures: its HTTP status, "error" or "cancelled"."""
    state.metrics.request_finished(backend=labels.backend, model=labels.model, kind=labels.kind, status=status)


def record_error(state: ServerState, labels: Labels, error: ApiError) -> None:
    record_status(state, labels, str(error.status))


def stream_error(state: ServerState, request_id: str, labels: Labels, error: ApiError) -> bytes:
    """A stream that fails after it began: logged, counted, and the `error` event that ends it."""
    log_event("request_error", level="error", request_id=request_id, error=error.message, backend=labels.backend)
    record_error(state, labels, error)
    return encode_sse(*error_event(error.error_type, error.message))


def log_cancelled(state: ServerState, request_id: str, chat: ChatRequest, labels: Labels) -> None:
    """The client went away before the reply ended: logged and counted like any finished request."""
    log_event("request_cancelled", request_id=request_id, session=chat.session_id, request_kind=chat.kind,
              status="cancelled", backend=labels.backend, route=labels.route)
    record_status(state, labels, "cancelled")


def log_finish(state: ServerState, request_id: str, chat: ChatRequest, labels: Labels, end: TurnEnd) -> None:
    stats = end.stats
    for raw in end.failed_tool_calls:
        log_event("tool_call_unparsed", level="warning", request_id=request_id, session=chat.session_id,
                  raw=raw[:2000], note="returned to the client as text")
    fields = dict(
        request_id=request_id, session=chat.session_id, request_kind=chat.kind,
        prompt_tokens=stats.prompt_tokens, cached_tokens=stats.cached_tokens,
        new_tokens=stats.prompt_tokens - stats.cached_tokens, output_tokens=stats.generated_tokens,
        ttft_s=round(stats.ttft_seconds, 3), prefill_tps=round(stats.prefill_tps, 1),
        decode_tps=round(stats.decode_tps, 1), peak_memory_gb=round(stats.peak_memory_gb, 3),
        cache=stats.cache_note or None, stop_reason=end.stop_reason, finish=stats.finish_reason,
        backend=labels.backend, route=labels.route,
    )
    # the engine's extra facts (prompt cache: reused_tokens, cache_entry, diverged_at/_message/_role, miss_reason)
    fields.update({key: value for key, value in stats.extra.items() if key not in fields and key not in ("kind", "level")})
    log_event("request_finish", kind="perf", **fields)
    record_finish(state, labels, stats, "cancelled" if stats.finish_reason == "cancelled" else "ok")


def record_finish(state: ServerState, labels: Labels, stats: GenerationStats, status: str) -> None:
    new_tokens = stats.prompt_tokens - stats.cached_tokens
    state.metrics.request_finished(backend=labels.backend, model=labels.model, kind=labels.kind, status=status,
                                   input_tokens=new_tokens, output_tokens=stats.generated_tokens,
                                   cached_tokens=stats.cached_tokens,
                                   ttft_s=stats.ttft_seconds if stats.generated_tokens else None,
                                   decode_tps=stats.decode_tps or None)
    if stats.cached_tokens:
        state.metrics.prompt_cache("hit", stats.cached_tokens)
    if new_tokens > 0:
        state.metrics.prompt_cache("miss", new_tokens)
