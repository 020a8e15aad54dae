"""The backends one server routes to: the built-in model (`local`), other local MLX models (loaded on first
use, unloaded after keep_alive idle), and remote engines; the router and the per-backend health that
fallbacks and cooldowns read.

Local models each have their own engine thread and prompt cache; one lock makes their steps take turns
(MLX computes for one of them at a time).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from mlxclaude.engine.backend import Backend, ModelInfo
from mlxclaude.engine.worker import Worker
from mlxclaude.logs import log_event, log_internal_error
from mlxclaude.protocol.errors import ApiError
from mlxclaude.routing.config import LOCAL, BackendSpec, RoutingConfig
from mlxclaude.routing.health import BackendHealth
from mlxclaude.routing.router import Route, Router
from mlxclaude.upstream.engine import RemoteEngine, UpstreamFailure
from mlxclaude.upstream.engines import make_engine

LoaderFactory = Callable[[BackendSpec], Callable[[], Backend]]
IDLE_CHECK_S = 5.0


@dataclass
class LocalModel:
    """An MLX model on its own worker. The default one (`local`) starts with the server and stays."""

    spec: BackendSpec
    new_worker: Callable[[], Worker]
    worker: Optional[Worker] = None
    default: bool = False
    last_used: float = field(default_factory=time.monotonic)

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
        raise UpstreamFailure(error, retryable=True)

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


@dataclass
class RemoteBackend:
    spec: BackendSpec
    engine: RemoteEngine


Runtime = Union[LocalModel, RemoteBackend]


class Backends:
    def __init__(self, config: RoutingConfig, default_worker: Worker, *, load: Optional[LoaderFactory] = None,
                 new_worker: Optional[Callable[[Callable[[], Backend], threading.Lock], Worker]] = None,
                 engine_lock: Optional[threading.Lock] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.router = Router(config)
        self.health = BackendHealth(config.backends, clock=clock)
        self.engine_lock = engine_lock or threading.Lock()
        self.by_name: dict[str, Runtime] = {}
        for name, spec in config.backends.items():
            if name == LOCAL:
                self.by_name[name] = LocalModel(spec, lambda: default_worker, worker=default_worker, default=True)
            elif spec.kind == "mlx":
                if load is None or new_worker is None:
                    raise ValueError(f"backend {name!r} is a local model, and this server was given no loader")
                self.by_name[name] = LocalModel(spec, self._worker_factory(spec, load, new_worker))
            else:
                self.by_name[name] = RemoteBackend(spec, make_engine(spec))

    def _worker_factory(self, spec: BackendSpec, load: LoaderFactory, new_worker) -> Callable[[], Worker]:
        return lambda: new_worker(load(spec), self.engine_lock)

    @property
    def local(self) -> LocalModel:
        runtime = self.by_name[LOCAL]
        assert isinstance(runtime, LocalModel)
        return runtime

    def plan(self, model_id: str) -> tuple[Route, list[Runtime]]:
        """The route for Claude Code's model id, and the backends to try in order (its fallbacks after it,
        backends cooling down left out unless nothing else is left)."""
        route = self.router.route(model_id)
        return route, [self.by_name[name] for name in self.health.order(self.router.chain(model_id))]

    def up(self) -> dict[str, bool]:
        """Each backend's `mlxclaude_backend_up`: a local model that has not failed, a remote one not cooling."""
        return {name: (runtime.state != "failed" if isinstance(runtime, LocalModel)
                       else not self.health.cooling(name))
                for name, runtime in self.by_name.items()}

    def queue_depth(self) -> int:
        return sum(runtime.worker.pending for runtime in self.by_name.values()
                   if isinstance(runtime, LocalModel) and runtime.worker is not None)

    def facts(self) -> dict[str, Any]:
        """GET /mlxclaude/status's backends, routes and fallbacks."""
        backends = []
        for name, runtime in self.by_name.items():
            if isinstance(runtime, LocalModel):
                backends.append(runtime.facts())
                continue
            spec = runtime.spec
            facts = {"name": name, "kind": spec.kind, "model": spec.model or spec.deployment, "url": spec.url,
                     **self.health.facts(name)}
            backends.append({key: value for key, value in facts.items() if value is not None or key == "model"})
        return {"backends": backends,
                "routes": [{"pattern": pattern, "backend": backend} for pattern, backend in self.config.routes],
                "fallbacks": {name: list(chain) for name, chain in self.config.fallbacks.items()}}

    async def unload_idle(self, now: Optional[float] = None) -> list[str]:
        """Unload the local models (not the default one) idle for longer than their keep_alive."""
        now = time.monotonic() if now is None else now
        unloaded = []
        for runtime in self.by_name.values():
            if (isinstance(runtime, LocalModel) and not runtime.default and runtime.worker is not None
                    and runtime.spec.keep_alive_s is not None
                    and runtime.idle_for(now) > runtime.spec.keep_alive_s):
                await asyncio.to_thread(runtime.unload)
                unloaded.append(runtime.spec.name)
        return unloaded

    async def keep_alive_loop(self) -> None:
        alive = [spec.keep_alive_s for spec in self.config.backends.values() if spec.keep_alive_s]
        interval = max(0.05, min([IDLE_CHECK_S, *(seconds / 4 for seconds in alive)]))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.unload_idle()
            except Exception as exc:
                log_internal_error("unload_failed", exc)

    async def close(self) -> None:
        """At shutdown: the other local models stop (the default one is the server's own), remote clients close."""
        for runtime in self.by_name.values():
            if isinstance(runtime, LocalModel):
                if not runtime.default:
                    await asyncio.to_thread(runtime.unload)
            else:
                await runtime.engine.aclose()
