"""The targets one server routes to — the built-in model (`local`), other local MLX models (loaded on first
use, unloaded after keep_alive idle), remote engines — with the router and the per-backend health that
fallbacks and cooldowns read.

Local models each have their own engine thread and prompt cache; one lock makes their steps take turns
(MLX computes for one of them at a time).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Optional

from mlxclaude.engine.backend import Backend
from mlxclaude.engine.worker import Worker
from mlxclaude.logs import log_internal_error
from mlxclaude.protocol import limits
from mlxclaude.routing.config import LOCAL, BackendSpec, RoutingConfig
from mlxclaude.routing.failure import TargetFailure
from mlxclaude.routing.health import BackendHealth
from mlxclaude.routing.router import Route, Router
from mlxclaude.server.inflight import Held
from mlxclaude.server.local_target import LocalTarget
from mlxclaude.server.remote_targets import remote_target
from mlxclaude.server.state import ServerState
from mlxclaude.server.target import Target, TurnRequest
from mlxclaude.upstream.engines import make_engine

LoaderFactory = Callable[[BackendSpec], Callable[[], Backend]]
IDLE_CHECK_S = 5.0


class Backends:
    def __init__(self, config: RoutingConfig, state: ServerState, default_worker: Optional[Worker], *,
                 load: Optional[LoaderFactory] = None,
                 new_worker: Optional[Callable[[Callable[[], Backend], threading.Lock], Worker]] = None,
                 engine_lock: Optional[threading.Lock] = None, clock: Callable[[], float] = time.monotonic,
                 sight: Optional[Callable[[BackendSpec], bool]] = None) -> None:
        self.config = config
        self.router = Router(config)
        self.health = BackendHealth(config.backends, clock=clock)
        self.engine_lock = engine_lock or threading.Lock()
        self.by_name: dict[str, Target] = {}
        self.local_models: list[LocalTarget] = []
        for name, spec in config.backends.items():
            if name == LOCAL:
                if default_worker is None:
                    continue  # no route reaches it: no default model
                local = LocalTarget(spec, lambda: default_worker, state, worker=default_worker, default=True,
                                    sight=sight)
            elif spec.kind == "mlx":
                if load is None or new_worker is None:
                    raise ValueError(f"backend {name!r} is a local model, and this server was given no loader")
                local = LocalTarget(spec, self._worker_factory(spec, load, new_worker), state, sight=sight)
            else:
                self.by_name[name] = remote_target(spec, make_engine(spec), self.health, state)
                continue
            self.by_name[name] = local
            self.local_models.append(local)

    def _worker_factory(self, spec: BackendSpec, load: LoaderFactory, new_worker) -> Callable[[], Worker]:
        return lambda: new_worker(load(spec), self.engine_lock)

    @property
    def local(self) -> Optional[LocalTarget]:
        """The default local model, when there is one."""
        return next((model for model in self.local_models if model.default), None)

    def plan(self, model_id: str, *, images: bool = False, image_backend: Optional[str] = None
             ) -> tuple[Route, list[Target]]:
        """The route for Claude Code's model id, and the targets to try in order (its fallbacks after it,
        backends cooling down left out unless nothing else is left). A request carrying images goes first to
        `image_backend` when the routed target cannot see them."""
        route = self.router.route(model_id)
        chain = [self.by_name[name] for name in self.health.order(self.router.chain(model_id))]
        if images and image_backend in self.by_name and not chain[0].sees_images():
            seeing = self.by_name[image_backend]
            chain = [seeing, *(target for target in chain if target is not seeing)]
        return route, chain

    async def count_tokens(self, chain: list[Target], request: TurnRequest) -> int:
        """The routed target's count; where it has none, a loaded local model's tokenizer, else about four
        characters a token."""
        try:
            counted = await chain[0].count_tokens(request)
        except TargetFailure as failure:
            raise failure.error from None
        if counted is not None:
            return counted
        for model in self.local_models:
            if model.loaded() is not None:
                counted = await model.count_tokens(request)
                if counted is not None:
                    return counted
        return max(1, request.chat.text_size() // limits.TYPICAL_CHARS_PER_TOKEN)

    def up(self) -> dict[str, bool]:
        """Each backend's `mlxclaude_backend_up`."""
        return {name: target.up() for name, target in self.by_name.items()}

    def in_flight(self) -> Held:
        return [pair for target in self.by_name.values() for pair in target.in_flight()]

    def queue_depth(self) -> int:
        """Requests the local models hold, waiting or running (`mlxclaude_queue_depth`)."""
        return sum(model.queue_depth() for model in self.local_models)

    def facts(self) -> dict[str, Any]:
        """GET /mlxclaude/status's backends, routes and fallbacks."""
        return {"backends": [target.facts() for target in self.by_name.values()],
                "routes": [{"pattern": pattern, "backend": backend} for pattern, backend in self.config.routes],
                "fallbacks": {name: list(chain) for name, chain in self.config.fallbacks.items()}}

    async def unload_idle(self, now: Optional[float] = None) -> list[str]:
        """Unload the local models (not the default one) idle for longer than their keep_alive."""
        now = time.monotonic() if now is None else now
        unloaded = []
        for model in self.local_models:
            if (not model.default and model.worker is not None and model.spec.keep_alive_s is not None
                    and model.idle_for(now) > model.spec.keep_alive_s):
                await asyncio.to_thread(model.unload)
                unloaded.append(model.spec.name)
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
        for target in self.by_name.values():
            await target.close()
