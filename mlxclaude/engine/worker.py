"""One thread owns the model: it loads it, then serves the generations queued for it.

With a backend that batches (`backend.batcher(...)`, MlxBackend on mlx-lm's BatchGenerator) the thread
runs a scheduler loop: between two steps of the batch it takes new requests off the queue, and the batch
admits them (the interactive main turn first) up to `max_batch` streams and its KV budget. Anything the
batcher cannot serve, and every request of a backend without one, runs alone once the batch has drained
(admission pauses meanwhile, so it is not overtaken forever).

Results cross back to asyncio through loop.call_soon_threadsafe, one call per loop for all streams, once
FLUSH_STEPS steps or FLUSH_INTERVAL have passed while tokens flow, whichever comes first (a stream's first item,
its end and errors go out at once): each delivery wakes every stream's task and costs a socket write per stream,
so a few steps share one. Cancelling
a job sets its event, which the engine checks between steps (and prefill chunks). Each job may carry a tag
(the server's record of its request); `in_flight()` lists the tags of the jobs queued or running (several
running at once when they are batched).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from mlxclaude.engine.backend import Backend
from mlxclaude.engine.jobs import GenerationRequest, Stream, run_alone
from mlxclaude.logs import log_internal_error

_DONE = object()
FLUSH_INTERVAL = 0.05  # seconds a decoded token may wait for the next ones before it is delivered...
FLUSH_STEPS = 4  # ...or engine steps, whichever comes first


class QueueFull(Exception):
    pass


class _Outbox:
    """Items for requesters on event loops, posted in one call_soon_threadsafe per loop when flushed."""

    def __init__(self) -> None:
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue, list[Any]]]] = {}
        self._cancels: dict[asyncio.AbstractEventLoop, list[threading.Event]] = {}
        self._urgent = False
        self._last_flush = 0.0
        self._steps_held = 0  # engine steps since the last flush with items pending

    def add(self, loop: asyncio.AbstractEventLoop, results: asyncio.Queue, items: list[Any],
            cancel: threading.Event, *, urgent: bool = False) -> None:
        self._pending.setdefault(loop, []).append((results, items))
        self._cancels.setdefault(loop, []).append(cancel)
        self._urgent = self._urgent or urgent

    def flush_due(self) -> None:
        """Called after each engine step: flush when something urgent waits, items have waited FLUSH_STEPS
        steps, or the last flush is FLUSH_INTERVAL old."""
        if not self._pending:
            return
        self._steps_held += 1
        if self._urgent or self._steps_held >= FLUSH_STEPS or time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        pending, cancels = self._pending, self._cancels
        self._pending, self._cancels = {}, {}
        self._urgent, self._last_flush, self._steps_held = False, time.monotonic(), 0
        for loop, batch in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # the event loop closed under us: nobody is listening
                for cancel in cancels[loop]:
                    cancel.set()


def _deliver(batch: list[tuple[asyncio.Queue, list[Any]]]) -> None:
    for results, items in batch:
        for item in items:
            results.put_nowait(item)


class Worker:
    def __init__(self, load_backend: Callable[[], Backend], *, max_queue: int = 16, max_batch: int = 8,
                 engine_lock: Optional[threading.Lock] = None) -> None:
        self._load_backend = load_backend
        # held for each step when several models share the process: one computes at a time, steps interleave
        self._engine_lock = engine_lock or threading.Lock()
        self._jobs: queue.SimpleQueue[Optional[Stream]] = queue.SimpleQueue()
        self._max_queue = max_queue
        self.max_batch = max_batch
        self._thread = threading.Thread(target=self._run, name="mlxclaude-engine", daemon=True)
        self._lock = threading.Lock()
        self._open: dict[int, Stream] = {}  # submitted and not yet closed, by submission number
        self._numbers = itertools.count()
        self._outbox = _Outbox()
        self._alone: deque[Stream] = deque()  # waiting to run with nothing else
        self.batcher: Any = None
        self.backend: Optional[Backend] = None
        self.state = "loading"
        self.error: Optional[str] = None
        self.requests_served = 0
        self.thread_id: Optional[int] = None  # the engine thread's, as the operating system knows it (top -H, ps -L)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Cancel every open job, let the engine thread finish its step and exit; whether it did in time
        (MLX must not be used from another thread, or torn down at exit, while it still runs)."""
        with self._lock:
            for work in self._open.values():
                work.cancel.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- what the server sees ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Requests queued or being generated."""
        with self._lock:
            return len(self._open)

    @property
    def busy(self) -> bool:
        with self._lock:
            return any(work.running for work in self._open.values())

    @property
    def mode(self) -> str:
        return "batched" if self.batcher is not None else "one at a time"

    def in_flight(self) -> list[tuple[Any, bool]]:
        """(tag, running) for each job submitted and not finished, oldest first; a queued job whose client went
        away (cancelled, to be dropped unrun) is left out."""
        with self._lock:
            return [(work.tag, work.running) for work in self._open.values()
                    if work.running or not work.cancel.is_set()]

    def batch_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"mode": self.mode, "max_batch": self.max_batch, "engine_thread": self.thread_id}
        if self.batcher is not None:
            facts.update(self.batcher.facts())
        return facts

    # --- submitting ----------------------------------------------------------------------------------

    def submit_generation(self, request: GenerationRequest, cancel: Optional[threading.Event] = None, *,
                          tag: Any = None) -> "JobResults":
        """Queue a generation now (QueueFull when the queue is full); iterate the result for the items its sink
        gives, in order. Closing the result early (a client went away) sets `cancel`. `tag` is listed by
        in_flight() until it finishes."""
        cancel = cancel or threading.Event()
        number, results, emit, close = self._channel(cancel)
        stream = Stream(request=request, emit=emit, close=close, cancel=cancel, tag=tag)
        return self._enqueue(number, stream, results)

    def _channel(self, cancel: threading.Event):
        if self.pending >= self._max_queue:
            raise QueueFull()
        loop = asyncio.get_running_loop()
        results: asyncio.Queue = asyncio.Queue()
        number = next(self._numbers)

        delivered = False

        def emit(items: list[Any]) -> None:
            nonlocal delivered
            self._outbox.add(loop, results, items, cancel, urgent=not delivered)  # the first token never waits
            delivered = delivered or bool(items)

        def close() -> None:
            self._outbox.add(loop, results, [_DONE], cancel, urgent=True)
            with self._lock:
                self._open.pop(number, None)
                self.requests_served += 1

        return number, results, emit, close

    def _enqueue(self, number: int, work: Stream, results: asyncio.Queue) -> "JobResults":
        with self._lock:
            self._open[number] = work
        self._jobs.put(work)
        return JobResults(results, work.cancel)

    # --- the engine thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        self.thread_id = threading.get_native_id()
        try:
            with self._engine_lock:
                self.backend = self._load_backend()
            self.state = "ready"
        except Exception as exc:
            self.state, self.error = "failed", str(exc)
            return
        make_batcher = getattr(self.backend, "batcher", None)
        if make_batcher is not None:
            try:
                self.batcher = make_batcher(max_batch=self.max_batch)
            except Exception as exc:  # never fatal: generations then run one at a time
                log_internal_error("batching_unavailable", exc)
                self.batcher = None
        while True:
            if not self._take_jobs():
                self._shut_down()
                return
            try:
                with self._engine_lock:
                    self._turn()
            except Exception as exc:  # a fault of the engine loop itself: the streams in the batch fail with it
                log_internal_error("engine_step_failed", exc)
                if self.batcher is not None:
                    self.batcher.fail_all(exc)
            finally:
                self._outbox.flush_due()

    def _has_work(self) -> bool:
        return bool(self._alone) or (self.batcher is not None and self.batcher.has_work)

    def _take_jobs(self) -> bool:
        """Move what was submitted to the batch or the run-alone queue; wait for some when there is nothing to do.
        False once the worker is stopped."""
        block = not self._has_work()
        if block:
            self._outbox.flush()  # nothing more is coming until new work arrives
        elif self._jobs.empty():
            return True  # the usual case between two steps: no exception raised and caught
        while True:
            try:
                work = self._jobs.get(block=block)
            except queue.Empty:
                return True
            if work is None:
                return False
            block = False
            if self.batcher is not None:
                self.batcher.add(work)
            else:
                self._alone.append(work)

    def _turn(self) -> None:
        batch_running = self.batcher is not None and self.batcher.running
        if self._alone and not batch_running:
            self._run_alone(self._alone.popleft())
        elif self.batcher is not None and self.batcher.has_work:
            self.batcher.step(admit=not self._alone)  # drain the batch first for a request that must run alone

    def _run_alone(self, work: Stream) -> None:
        flush = self._outbox.flush
        original = work.emit

        def emit_at_once(items: list[Any]) -> None:  # alone, every item goes out at once
            original(items)
            flush()

        work.emit = emit_at_once
        try:
            if work.cancel.is_set():  # its client went away while it waited
                work.finished = True
                work.close()
            else:
                run_alone(self.backend, work)
        finally:
            work.emit = original

    def _shut_down(self) -> None:
        for work in list(self._alone):
            work.cancel.set()
            work.close()
        self._alone.clear()
        if self.batcher is not None:
            try:
                self.batcher.close()
            except Exception as exc:
                log_internal_error("batch_close_failed", exc)
        self._outbox.flush()
        if self.backend is not None:
            self.backend.end_thread()


class JobResults:
    """What a queued job yields, as an async iterator; the job is cancelled when this is closed, even unread."""

    interruptible = True  # its queue takes the stream's own markers (`interrupt`)

    def __init__(self, results: asyncio.Queue, cancel: threading.Event) -> None:
        self._results = results
        self._cancel = cancel
        self._finished = False
        self._held: Any = None  # an end or an error take_ready() met: the next __anext__ reports it

    def __aiter__(self) -> "JobResults":
        return self

    def interrupt(self, marker: object) -> None:
        """`marker` comes out of `__anext__` or `take_ready` after what has been delivered so far."""
        self._results.put_nowait(marker)

    def take_ready(self) -> list[Any]:
        """The items already delivered, without waiting (a stream behind the engine sends them in one write).
        Stops before the end or an error, which the next __anext__ reports."""
        items: list[Any] = []
        while self._held is None and not self._results.empty():
            item = self._results.get_nowait()
            if item is _DONE or isinstance(item, Exception):
                self._held = item
            else:
                items.append(item)
        return items

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        if self._held is not None:
            item, self._held = self._held, None
        else:
            item = await self._results.get()
        if item is _DONE:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, Exception):
            self._finished = True
            raise item
        return item

    async def aclose(self) -> None:
        self._cancel.set()

