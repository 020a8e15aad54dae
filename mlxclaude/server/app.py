"""The FastAPI application: routes, auth, request ids and Anthropic-shaped errors."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from contextlib import asynccontextmanager
from typing import Callable, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from mlxclaude.config.registry import ServerSettings
from mlxclaude.engine.backend import Backend
from mlxclaude.engine.worker import QueueFull, Worker
from mlxclaude.logs import log_event, log_internal_error
from mlxclaude.protocol.chat_completions_out import error_body
from mlxclaude.protocol.errors import ApiError
from mlxclaude.routing.config import BackendSpec, RoutingConfig, parse_routing
from mlxclaude.server import admin, chat_completions, inflight, messages, meta, responses
from mlxclaude.server.auth import OPEN_PATHS, from_this_machine, is_authorized
from mlxclaude.server.backends import Backends, LoaderFactory
from mlxclaude.server.metrics import Metrics, metrics_route
from mlxclaude.server.state import ServerState, new_request_id
from mlxclaude.websearch.config import WebSearchConfig

OPENAI_PATHS = ("/chat/completions", "/responses")  # their errors in OpenAI's shape


def error_response(error: ApiError, request: Request) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    headers = {"request-id": request_id}
    if error.status in (408, 413):  # the rest of the body is not read: the connection cannot serve another
        headers["connection"] = "close"
    if error.retry_after:
        headers["retry-after"] = error.retry_after
    elif error.status in (429, 529):
        headers["retry-after"] = "2"
    body = error.to_body(request_id)
    if request.url.path.endswith(OPENAI_PATHS):
        body = error_body(body["error"]["type"], body["error"]["message"])
    return JSONResponse(body, status_code=error.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return error_response(exc, request)

    @app.exception_handler(QueueFull)
    async def on_queue_full(request: Request, exc: QueueFull):
        return error_response(ApiError.overloaded(), request)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        return error_response(ApiError.invalid_request(str(exc.errors()[:1])), request)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"Not found: {request.method} {request.url.path}"
        return error_response(ApiError.from_status(exc.status_code, message), request)



class RequestGate:
    """Pure ASGI middleware (streams stay cancellable) in front of every route: a request id on every
    response; the token check (without a token, requests from web pages are refused); the body size limit,
    before the body is read; and an unexpected exception answered as a 500 with a logged traceback, which
    keeps the keep-alive connection usable (FastAPI's own handler re-raises, and uvicorn then drops it)."""

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            return await error_response(refusal, request)(scope, receive, send)
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                headers.append((b"request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, body_guarded(receive, self.settings.max_body_bytes, self.settings.body_timeout),
                           send_with_id)
        except ClientDisconnect:
            log_event("request_cancelled", request_id=request_id, path=request.url.path,
                      note="the client went away before its request body arrived")
        except Exception as exc:
            log_internal_error("internal_error", exc, request_id=request_id, path=request.url.path)
            if not started:
                await error_response(ApiError.api_error(f"internal error: {exc}"), request)(scope, receive, send)

    def refusal(self, request: Request) -> Optional[ApiError]:
        if self.settings.auth_token:
            if request.url.path not in OPEN_PATHS and not is_authorized(self.settings.auth_token, request.headers):
                return ApiError.authentication_failed()
        elif not from_this_machine(request.headers):
            return ApiError.from_status(403, "requests from web pages are refused: this server has no auth token "
                                             "(set auth_token to call it from elsewhere)")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.settings.max_body_bytes):
            return too_large(self.settings.max_body_bytes) if declared.isdigit() else ApiError.invalid_request(
                "invalid content-length header")
        return None


def too_large(limit: int) -> ApiError:
    return ApiError.request_too_large(f"request body exceeds the maximum of {limit} bytes")


def body_guarded(receive, limit: int, timeout: float):
    """`receive`, failing with a 413 once more than `limit` body bytes arrived (chunked bodies say no length)
    and with a 408 when the whole body has not arrived `timeout` seconds after it was first awaited."""
    received = 0
    deadline: Optional[float] = None
    body_done = False

    async def guarded():
        nonlocal received, deadline, body_done
        if body_done:  # afterwards only http.disconnect comes, whenever the client goes
            return await receive()
        now = asyncio.get_running_loop().time()
        deadline = deadline if deadline is not None else now + timeout
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - now))
        except asyncio.TimeoutError:
            raise ApiError.from_status(408, f"the request body did not arrive within {timeout:g}s") from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
            body_done = not message.get("more_body", False)
        return message

    return guarded


def install_routes(app: FastAPI) -> None:
    app.add_api_route("/", meta.root, methods=["GET", "HEAD"])
    app.add_api_route("/api/hello", meta.root, methods=["GET", "HEAD"])
    app.add_api_route("/health", meta.health, methods=["GET"])
    for prefix in ("/v1", "/v1/v1"):  # a base URL ending in /v1 yields /v1/v1/...
        app.add_api_route(f"{prefix}/messages", messages.create_message, methods=["POST"])
        app.add_api_route(f"{prefix}/messages/count_tokens", messages.count_tokens, methods=["POST"])
        app.add_api_route(f"{prefix}/chat/completions", chat_completions.create_chat_completion, methods=["POST"])
        app.add_api_route(f"{prefix}/responses", responses.create_response, methods=["POST"])
        app.add_api_route(f"{prefix}/models", meta.list_models, methods=["GET"])
        app.add_api_route(f"{prefix}/models/{{model_id:path}}", meta.retrieve_model, methods=["GET"])
    app.add_api_route("/metrics", metrics_route, methods=["GET"])
    admin.install(app)


def create_app(settings: ServerSettings, load_backend: Optional[Callable[[], Backend]], *,
               routing: Optional[RoutingConfig] = None, load: Optional[LoaderFactory] = None,
               web_search: Optional[WebSearchConfig] = None,
               sight: Optional[Callable[[BackendSpec], bool]] = None) -> FastAPI:
    """`load_backend` loads the default model (`local`); `routing` (config.toml's backends, routes and
    fallbacks) adds others, `load(spec)` giving the loader of each other local model. With routes that never
    reach `local`, no default model is loaded (`load_backend` may be None). `sight(spec)` says whether a local
    model will see images before it is loaded (where a request with images goes)."""
    engine_lock = threading.Lock()

    def new_worker(loader: Callable[[], Backend], lock: threading.Lock) -> Worker:
        return Worker(loader, max_queue=settings.max_queue, max_batch=settings.max_batch, engine_lock=lock)

    routing = routing or parse_routing({}, local_model=settings.model)
    if routing.uses_local and load_backend is None:
        raise ValueError("the routes reach `local`, and this server was given no model to load for it")
    worker = new_worker(load_backend, engine_lock) if routing.uses_local and load_backend is not None else None
    state = ServerState(settings=settings, worker=worker, web_search=web_search)
    backends = Backends(routing, state, worker, load=load, new_worker=new_worker, engine_lock=engine_lock,
                        sight=sight)
    state.backends = backends
    state.metrics = Metrics(queue_depth=backends.queue_depth, backend_up=backends.up)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.loop = asyncio.get_running_loop()
        if worker is not None:
            worker.start()
        progress = asyncio.ensure_future(inflight.log_prefill_progress(backends.in_flight,
                                                                       lambda: state.progress_interval))
        keep_alive = asyncio.ensure_future(backends.keep_alive_loop())
        yield
        for task in (progress, keep_alive):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await backends.close()
        if worker is not None:
            stopped = await asyncio.to_thread(worker.stop)
            if stopped and worker.backend is not None:
                worker.backend.close()  # e.g. finishes the prompt cache's background writes to disk

    app = FastAPI(title="mlxclaude", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.mlxclaude = state
    app.state.metrics = state.metrics
    install_error_handlers(app)
    app.add_middleware(RequestGate, settings=settings)
    install_routes(app)
    return app
