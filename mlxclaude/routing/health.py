"""Each backend's recent failures, for fallbacks: after `cooldown_after` consecutive failures before the
first byte a backend cools down for `cooldown_s` (skipped while another in the chain can serve). When the
cooldown ends it is tried again: a success resets the count, a failure starts a new cooldown at once.

Thread-safe: the server calls it from the event loop and from worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from mlxclaude.routing.config import BackendSpec

OK, FAILING, COOLING = "ok", "failing", "cooling down"


@dataclass
class _Record:
    failures: int = 0                 # consecutive, since the last success
    cooling_until: float = float("-inf")
    last_error: Optional[str] = None


class BackendHealth:
    def __init__(self, specs: Mapping[str, BackendSpec], clock: Callable[[], float] = time.monotonic) -> None:
        self._specs = specs
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def failed(self, name: str, error: str) -> None:
        """A failure before the first byte (connection, timeout, 429/5xx/529)."""
        spec = self._specs.get(name)
        after = spec.cooldown_after if spec else BackendSpec.cooldown_after
        cooldown = spec.cooldown_s if spec else BackendSpec.cooldown_s
        with self._lock:
            record = self._records.setdefault(name, _Record())
            record.failures += 1
            record.last_error = error
            if record.failures >= after:
                record.cooling_until = self._clock() + cooldown

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)

    def cooling(self, name: str) -> bool:
        with self._lock:
            return self._cooling_left(name) > 0

    def state(self, name: str) -> str:
        with self._lock:
            return self._state(name)

    def facts(self, name: str) -> dict[str, Any]:
        """{"state", "failures", "cooldown_left_s" (rounded to 0.1 s, None when not cooling), "last_error"}."""
        with self._lock:
            record = self._records.get(name, _Record())
            left = self._cooling_left(name)
            return {"state": self._state(name), "failures": record.failures,
                    "cooldown_left_s": round(left, 1) if left > 0 else None, "last_error": record.last_error}

    def order(self, chain: list[str]) -> list[str]:
        """The chain without the backends cooling down; all of it when every one is cooling."""
        with self._lock:
            ready = [name for name in chain if self._cooling_left(name) <= 0]
        return ready or list(chain)

    def _cooling_left(self, name: str) -> float:
        record = self._records.get(name)
        return record.cooling_until - self._clock() if record else 0.0

    def _state(self, name: str) -> str:
        if self._cooling_left(name) > 0:
            return COOLING
        record = self._records.get(name)
        return FAILING if record and record.failures else OK
