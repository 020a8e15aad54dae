"""A local MLX model as a route's target: its own worker (engine thread and prompt cache), loaded with the
server (the default model, `local`) or on first use and unloaded after keep_alive idle (the others)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Optional

from mlxclaude.engine.backend import ModelInfo, RenderedPrompt
from mlxclaude.engine.render import RenderError
from mlxclaude.engine.turn import output_budget, start_turn
from mlxclaude.engine.worker import JobResults, QueueFull, Worker
from mlxclaude.logs import log_event
from mlxclaude.protocol import limits
from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.content_parts import without_images
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.usage import Usage
from mlxclaude.routing.config import BackendSpec
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.event_turn import EventTurn
from mlxclaude.server.inflight import InFlight, records
from mlxclaude.server.state import ServerState
from mlxclaude.server.target import TurnRequest
from mlxclaude.server.web_search_turn import offer_search, with_searches


class LocalTarget:
    def __init__(self, spec: BackendSpec, new_worker: Callable[[], Worker], state: ServerState, *,
                 worker: Optional[Worker] = None, default: bool = False,
                 sight: Optional[Callable[[BackendSpec], bool]] = None) -> None:
        self.spec = spec
        self._sight = sight
        self._sees_before_loading: Optional[bool] = None
        self.new_worker = new_worker
        self.worker = worker
        self.default = default
        self.last_used = time.monotonic()
        self._state = state

    @property
    def state(self) -> str:
        if self.worker is None:
            return "unloaded"
        return {"ready": "loaded"}.get(self.worker.state, self.worker.state)

    def start(self) -> Worker:
        if self.worker is None:
            self.worker = self.new_worker()
            self.worker.start()  # its loader logs model_loading, then model_ready or model_load_failed
        self.last_used = time.monotonic()
        return self.worker

    async def ready(self) -> tuple[Worker, ModelInfo]:
        """The worker and its model's facts once loaded. The default model answers 529 while it loads (the
        client retries); another one is waited for, as its first request loads it."""
        worker = self.start()
        if not self.default:
            deadline = time.monotonic() + self.spec.timeout_s
            while worker.state == "loading" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        if worker.state == "ready" and worker.backend is not None:
            self.last_used = time.monotonic()
            return worker, worker.backend.info
        if worker.state == "failed":
            error = ApiError.api_error(f"model failed to load: {worker.error}")
        else:
            error = ApiError.overloaded("model is still loading")
        raise TargetFailure(error, retryable=True, counts_against_health=False)

    # --- the contract ---------------------------------------------------------------------------------

    async def open(self, request: TurnRequest, account: RequestAccount) -> EventTurn:
        chat = request.chat
        chat.require_readable()
        worker, info = await self.ready()
        chat = seen_by(info, chat, request.request_id)
        record = InFlight(request_id=request.request_id, kind=chat.kind, session=chat.session_id,
                          prompt_tokens=0, max_tokens=chat.max_tokens, stream=chat.stream, backend=self.spec.name)
        chat, not_configured = offer_search(chat, self._state, account, record)
        if not_configured is not None:
            return not_configured

        async def queue(chat: ChatRequest, *, first: bool = False) -> JobResults:
            check_size(chat, info.context_length)
            prompt = await render_prompt(worker, info, chat)
            settings = self._state.settings
            record.prompt_tokens = len(prompt.tokens)
            record.max_tokens = output_budget(len(prompt.tokens), chat.max_tokens, info,
                                              cap=settings.max_output_tokens, policy=settings.max_tokens_policy)
            try:  # queued now: a full queue is a 529 before any response starts
                return start_turn(worker, chat, prompt, record.max_tokens, info, record.progress, tag=record)
            except QueueFull:
                if first:
                    raise TargetFailure(ApiError.overloaded(), retryable=True, counts_against_health=False) from None
                raise ApiError.overloaded() from None

        job = await queue(chat, first=True)
        account.started(prompt_tokens=record.prompt_tokens, max_tokens=record.max_tokens, queued=worker.pending - 1)
        items = with_searches(chat, job, queue, self._state, request.request_id)
        return EventTurn(items, state=self._state, account=account, record=record,
                         start_usage=Usage(input_tokens=record.prompt_tokens))

    async def count_tokens(self, request: TurnRequest) -> Optional[int]:
        request.chat.require_readable()
        worker, info = await self.ready()
        return len((await render_prompt(worker, info, seen_by(info, request.chat))).tokens)

    def loaded(self) -> Optional[tuple[Worker, ModelInfo]]:
        """The worker and model facts when the model is loaded now (nothing is started)."""
        worker = self.worker
        if worker is None or worker.state != "ready" or worker.backend is None:
            return None
        return worker, worker.backend.info

    def facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"name": self.spec.name, "kind": "mlx", "state": self.state,
                                 "keep_alive_s": self.spec.keep_alive_s,
                                 "in_flight": self.worker.pending if self.worker is not None else 0}
        if self.default:
            facts["default"] = True
        info = self.worker.backend.info if self.worker is not None and self.worker.backend is not None else None
        facts["model"] = info.name if info is not None else self.spec.model
        if self.worker is not None and self.worker.error:
            facts["error"] = self.worker.error
        return facts

    def up(self) -> bool:
        return self.state != "failed"

    def sees_images(self) -> bool:
        """The loaded model's own answer; before it loads, what `sight` read from its files (asked once)."""
        loaded = self.loaded()
        if loaded is not None:
            return loaded[1].supports_vision
        if self._sees_before_loading is None:
            try:
                self._sees_before_loading = bool(self._sight and self._sight(self.spec))
            except Exception:  # a model not on disk yet: its first request downloads and loads it
                self._sees_before_loading = False
        return self._sees_before_loading

    def in_flight(self) -> list[tuple[InFlight, bool]]:
        return records(self.worker) if self.worker is not None else []

    def queue_depth(self) -> int:
        return self.worker.pending if self.worker is not None else 0

    # --- keep_alive -----------------------------------------------------------------------------------

    def idle_for(self, now: float) -> float:
        if self.worker is None or self.worker.pending:
            return 0.0
        return now - self.last_used

    def unload(self) -> None:
        """Stop the worker and free the model (on a thread: it joins the engine thread)."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        if worker.stop() and worker.backend is not None:
            worker.backend.close()
        log_event("backend_unloaded", kind="daemon", backend=self.spec.name, model=self.spec.model)

    async def close(self) -> None:
        if not self.default:  # the default model is the server's own: its lifespan stops it
            await asyncio.to_thread(self.unload)


def check_size(chat: ChatRequest, context_length: int) -> None:
    """A request far too long for a local model's context is refused before minutes of tokenizing."""
    size = chat.text_size()
    if size > context_length * limits.MAX_CHARS_PER_TOKEN:
        raise ApiError.prompt_too_long(size // limits.TYPICAL_CHARS_PER_TOKEN, context_length)


def seen_by(info: ModelInfo, chat: ChatRequest, request_id: str | None = None) -> ChatRequest:
    """`chat` as this model can take it: for a model that cannot see, each image is a short text placeholder
    (the session carries on; logged once per request)."""
    if not chat.has_images or info.supports_vision:
        return chat
    chat, replaced = without_images(chat)
    if request_id is not None:
        log_event("images_omitted", level="warning", request_id=request_id, model=info.name, images=replaced,
                  note="the model cannot see images: each is a text placeholder")
    return chat


async def render_prompt(worker: Worker, info: ModelInfo, chat: ChatRequest) -> RenderedPrompt:
    try:
        assert worker.backend is not None
        return await asyncio.to_thread(worker.backend.render, chat)
    except RenderError as exc:
        raise ApiError.invalid_request(str(exc)) from None
