"""One thread owns the model: it loads it, then runs generation jobs one at a time from a queue.

Results cross back to asyncio through loop.call_soon_threadsafe. Cancelling a job sets its event,
which the backend checks between tokens (and between prefill chunks). Each job may carry a tag (the
server's record of its request); `in_flight()` lists the tags of the jobs queued or running.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from mlxclaude.engine.backend import Backend

_DONE = object()


class QueueFull(Exception):
    pass


@dataclass
class _Job:
    produce: Callable[[Backend, threading.Event], Iterator[Any]]
    loop: asyncio.AbstractEventLoop
    results: asyncio.Queue
    cancel: threading.Event = field(default_factory=threading.Event)
    tag: Any = None


class Worker:
    def __init__(self, load_backend: Callable[[], Backend], *, max_queue: int = 16) -> None:
        self._load_backend = load_backend
        self._jobs: queue.Queue[Optional[_Job]] = queue.Queue()
        self._max_queue = max_queue
        self._thread = threading.Thread(target=self._run, name="mlxclaude-engine", daemon=True)
        self.backend: Optional[Backend] = None
        self.state = "loading"
        self.error: Optional[str] = None
        self.busy = False
        self.requests_served = 0
        self._lock = threading.Lock()
        self._open: list[_Job] = []  # submitted and not finished, oldest first
        self._current: Optional[_Job] = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Cancel every open job, let the engine thread finish its step and exit; whether it did in time
        (MLX must not be used from another thread, or torn down at exit, while it still runs)."""
        with self._lock:
            for job in self._open:
                job.cancel.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._jobs.qsize() + (1 if self.busy else 0)

    def in_flight(self) -> list[tuple[Any, bool]]:
        """(tag, running) for each job submitted and not finished, oldest first; a queued job whose client went
        away (cancelled, to be dropped unrun) is left out."""
        with self._lock:
            return [(job.tag, job is self._current) for job in self._open
                    if job is self._current or not job.cancel.is_set()]

    def _run(self) -> None:
        try:
            self.backend = self._load_backend()
            self.state = "ready"
        except Exception as exc:
            self.state, self.error = "failed", str(exc)
            return
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._current = job
            self.busy = True
            try:
                self._execute(job)
            finally:
                with self._lock:
                    self._current = None
                    if job in self._open:
                        self._open.remove(job)
                self.busy = False
                self.requests_served += 1

    def _execute(self, job: _Job) -> None:
        def post(item: Any) -> None:
            try:
                job.loop.call_soon_threadsafe(job.results.put_nowait, item)
            except RuntimeError:  # the event loop closed under us: nobody is listening
                job.cancel.set()

        if job.cancel.is_set():
            post(_DONE)
            return
        try:
            for item in job.produce(self.backend, job.cancel):
                post(item)
        except Exception as exc:
            post(exc)
        post(_DONE)

    def submit(self, produce: Callable[[Backend, threading.Event], Iterator[Any]],
               cancel: Optional[threading.Event] = None, *, tag: Any = None) -> "JobResults":
        """Queue `produce(backend, cancel)` for the engine thread now (QueueFull when the queue is full);
        iterate the result for what it yields, in order. Closing it early (a client went away) sets `cancel`.
        `tag` is listed by in_flight() until the job finishes."""
        if self.pending >= self._max_queue:
            raise QueueFull()
        job = _Job(produce=produce, loop=asyncio.get_running_loop(), results=asyncio.Queue(),
                   cancel=cancel or threading.Event(), tag=tag)
        with self._lock:
            self._open.append(job)
        self._jobs.put(job)
        return JobResults(job)


class JobResults:
    """What a queued job yields, as an async iterator; the job is cancelled when this is closed, even unread."""

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._finished = False

    def __aiter__(self) -> "JobResults":
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        item = await self._job.results.get()
        if item is _DONE:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, Exception):
            self._finished = True
            raise item
        return item

    async def aclose(self) -> None:
        self._job.cancel.set()
