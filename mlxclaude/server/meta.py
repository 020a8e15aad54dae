"""Connectivity probes, /health and the model list."""

from __future__ import annotations

import re

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from mlxclaude.engine.backend import ModelInfo
from mlxclaude.protocol.errors import ApiError
from mlxclaude.server.state import ServerState

EPOCH = "1970-01-01T00:00:00Z"


def model_alias(info: ModelInfo) -> str:
    """An id Claude Code's gateway discovery keeps (it wants 'claude' in the id)."""
    slug = re.sub(r"[^a-z0-9]+", "-", info.name.lower()).strip("-") or "model"
    return slug if slug.startswith("claude-") else f"claude-local-{slug}"


def model_object(info: ModelInfo, model_id: str | None = None) -> dict:
    return listed(model_id or model_alias(info), f"{info.name} (local)", max_input_tokens=info.context_length,
                  max_tokens=info.context_length)


def listed(model_id: str, display_name: str, **extra: object) -> dict:
    """A model in both APIs' shapes: Anthropic's (type, display_name, created_at) and OpenAI's (object,
    created, owned_by); each SDK reads its own fields."""
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": EPOCH,
            "object": "model", "created": 0, "owned_by": "mlxclaude", **extra}


async def root(request: Request) -> Response:
    if request.method == "HEAD":
        return Response(status_code=200)
    worker = request.app.state.mlxclaude.worker
    return JSONResponse({"name": "mlxclaude", "status": worker.state if worker is not None else "ready"})


async def health(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.mlxclaude
    worker = state.worker
    if worker is None:  # no default model: the remote backends serve every route
        backends = state.backends.facts()["backends"] if state.backends is not None else []
        return JSONResponse({"status": "ok", "model": None, "backends": [backend["name"] for backend in backends]})
    if worker.state != "ready" or worker.backend is None:
        body = {"status": worker.state}
        if worker.error:
            body["error"] = worker.error
        return JSONResponse(body, status_code=503)
    info = worker.backend.info
    return JSONResponse({
        "status": "ok",
        "model": info.name,
        "model_id": model_alias(info),
        "model_path": info.path,
        "context_length": info.context_length,
        "tool_format": info.tool_format.name if info.tool_format else None,
        "requests_served": worker.requests_served,
        "queued": worker.pending,
    })


async def list_models(request: Request) -> JSONResponse:
    """The local model (under Claude Code's kind of id and its own name) and each other backend's model: what
    the routes can reach (without a default model, Claude Code's own ids go to the routes)."""
    state: ServerState = request.app.state.mlxclaude
    info = state.ready_info()
    models = [model_object(info), model_object(info, info.name)] if info is not None else []
    config = state.backends.config if state.backends is not None else None
    for name, spec in (config.backends.items() if config is not None else ()):
        if name != "local":
            models.append(listed(spec.model or spec.deployment or name, f"{name} ({spec.kind})"))
    first, last = (models[0]["id"], models[-1]["id"]) if models else (None, None)
    return JSONResponse({"object": "list", "data": models, "has_more": False, "first_id": first, "last_id": last})


async def retrieve_model(request: Request, model_id: str) -> JSONResponse:
    info = request.app.state.mlxclaude.ready_info()
    if info is None:
        if model_id.startswith("claude"):
            return JSONResponse({"type": "model", "id": model_id, "display_name": f"{model_id} (routed)",
                                 "created_at": EPOCH})
    elif model_id.startswith("claude") or model_id in (info.name, model_alias(info)):
        return JSONResponse(model_object(info, model_id))
    raise ApiError.not_found(f"model: {model_id}")
