"""What the routes share: settings, the engine worker, request counters."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from mlxclaude.config.registry import ServerSettings
from mlxclaude.engine.backend import ModelInfo
from mlxclaude.engine.worker import Worker
from mlxclaude.protocol.errors import ApiError
from mlxclaude.server.inflight import PROGRESS_INTERVAL_S

if TYPE_CHECKING:
    from mlxclaude.server.backends import Backends


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


@dataclass
class ServerState:
    settings: ServerSettings
    worker: Optional[Worker]  # the default model's; None when every route goes to another backend
    started_at: float = field(default_factory=time.time)
    counter: itertools.count = field(default_factory=itertools.count)
    # set when the server begins to shut down: open streams end with an error event instead of a cut body
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    loop: Optional[asyncio.AbstractEventLoop] = None  # the serving loop, set at startup
    progress_interval: float = PROGRESS_INTERVAL_S  # seconds between prefill_progress lines of a long prompt
    backends: Optional["Backends"] = None  # the routes' backends: `local` (this worker's model) and the others
    metrics: Any = None  # server/metrics.py Metrics: GET /metrics
    requests_served: int = 0  # replies finished, on every backend
    web_search: Any = None  # websearch.config.WebSearchConfig: [web_search] in config.toml
    responses: Any = None  # server/responses.py ResponseStore: what previous_response_id can name

    def begin_shutdown(self) -> None:
        """Safe from any thread or a signal handler: ends the open streams with an error event."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.closing.set)

    def ready_info(self) -> Optional[ModelInfo]:
        """The loaded model's facts (None: there is no default model), or the error a client should see while
        it is not there."""
        if self.worker is None:
            return None
        if self.worker.state == "ready" and self.worker.backend is not None:
            return self.worker.backend.info
        if self.worker.state == "failed":
            raise ApiError.api_error(f"model failed to load: {self.worker.error}")
        raise ApiError.overloaded("model is still loading")
