"""Admin routes the CLI uses: GET /mlxclaude/status and POST /mlxclaude/shutdown (token-protected like the rest).

The status holds `in_flight`, a list (oldest first) of the requests queued or running, each with its phase
(queued, starting, prefill with percent and tok/s, decode with output tokens and tok/s) and age; see
server/inflight.py.

The daemon entry point stores a zero-argument callable at `app.state.shutdown_callback` that asks
uvicorn to exit; a server without one (tests, `mlxclaude serve`) answers 501 to a shutdown.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mlxclaude import __version__
from mlxclaude.engine.backend import DeviceMemory
from mlxclaude.protocol.errors import ApiError
from mlxclaude.server.inflight import status_facts
from mlxclaude.server.state import ServerState

GB = 1024 ** 3


def install(app: FastAPI) -> None:
    app.add_api_route("/mlxclaude/status", status, methods=["GET"])
    app.add_api_route("/mlxclaude/shutdown", shutdown, methods=["POST"])


def resident_memory_mb() -> Optional[float]:
    """Current resident set size (Linux /proc); None where it is not cheap to read."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_resident_memory_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB elsewhere


def device_memory_gb(facts: DeviceMemory) -> dict[str, float]:
    """The backend's allocator figures as mlx_active_gb, mlx_peak_gb and mlx_cache_gb (those it has)."""
    figures = {"active_gb": facts.active_bytes, "peak_gb": facts.peak_bytes, "cache_gb": facts.cache_bytes}
    return {f"mlx_{key}": round(value / GB, 3) for key, value in figures.items() if value is not None}


def status_body(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.mlxclaude
    worker = state.worker
    settings = state.settings
    body: dict[str, Any] = {
        "pid": os.getpid(),
        "version": __version__,
        "started_at": state.started_at,
        "uptime_s": round(time.time() - state.started_at, 1),
        "host": settings.host,
        "port": settings.port,
        "state": worker.state if worker is not None else "ready",
        "model_path": settings.model,  # what it was asked to load; the model's own facts once it is ready
        "requests_served": state.requests_served,
        "busy": bool(worker is not None and worker.busy) or bool(state.backends and state.backends.in_flight()),
        # in_flight: each request queued or running (kind, tokens, phase, prefill % or decode tok/s, age);
        # queued: how many of them wait for the engine
        **status_facts(state.backends.in_flight() if state.backends is not None else []),
    }
    if worker is not None and worker.error:
        body["error"] = worker.error
    memory: dict[str, Any] = {"rss_mb": resident_memory_mb(), "peak_rss_mb": peak_resident_memory_mb()}
    if worker is not None and worker.state == "ready" and worker.backend is not None:
        info = worker.backend.info
        body.update({
            "model": info.name,
            "model_path": info.path,
            "context_length": info.context_length,
            "tool_format": info.tool_format.name if info.tool_format else None,
        })
        memory.update(device_memory_gb(worker.backend.memory_facts()))
        cache_facts = worker.backend.cache_facts()
        if cache_facts:
            body["cache"] = cache_facts
    if state.backends is not None:
        body.update(state.backends.facts())  # backends (each with its state), routes, fallbacks
    if worker is not None:
        body["batch"] = worker.batch_facts()  # batched or one at a time, how many streams; each is in in_flight
    body["memory"] = {key: value for key, value in memory.items() if value is not None}
    return body


async def status(request: Request) -> JSONResponse:
    return JSONResponse(status_body(request))


async def shutdown(request: Request) -> JSONResponse:
    callback = getattr(request.app.state, "shutdown_callback", None)
    if callback is None:
        raise ApiError.from_status(501, "this server cannot be shut down over HTTP")
    # let this response go out before uvicorn stops accepting and drains
    asyncio.get_running_loop().call_later(0.05, callback)
    return JSONResponse({"status": "shutting_down", "pid": os.getpid()}, status_code=202)
