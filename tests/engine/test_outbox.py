"""Delivery from the engine thread to the event loop: a stream's first item and its end go out at once; tokens
in between wait for the next ones up to FLUSH_STEPS engine steps or FLUSH_INTERVAL, whichever comes first, so a
few steps share one wake-up and one socket write. The clock is the worker module's, stepped by the test (no
wall-clock waits)."""

import threading

from mlxclaude.engine import worker
from mlxclaude.engine.worker import FLUSH_INTERVAL, FLUSH_STEPS, _Outbox


class Loop:
    def __init__(self) -> None:
        self.deliveries: list[list] = []

    def call_soon_threadsafe(self, deliver, batch) -> None:
        self.deliveries.append([item for _, items in batch for item in items])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_item_and_end_go_out_at_once_tokens_between_wait_for_the_interval(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(worker.time, "monotonic", clock)
    loop, outbox, cancel = Loop(), _Outbox(), threading.Event()
    outbox.add(loop, None, ["first"], cancel, urgent=True)
    outbox.flush_due()
    assert loop.deliveries == [["first"]]
    for token in ("a", "b", "c"):
        clock.now += FLUSH_INTERVAL / 4
        outbox.add(loop, None, [token], cancel)
        outbox.flush_due()
    assert loop.deliveries == [["first"]]  # three steps inside the interval: held together
    clock.now += FLUSH_INTERVAL / 2
    outbox.flush_due()  # the interval is up (and so are the steps: FLUSH_STEPS is 4)
    assert loop.deliveries == [["first"], ["a", "b", "c"]]
    outbox.add(loop, None, ["d"], cancel)
    outbox.add(loop, None, ["end"], cancel, urgent=True)
    outbox.flush_due()
    assert loop.deliveries[-1] == ["d", "end"]
    outbox.flush_due()  # nothing pending: no empty delivery
    assert len(loop.deliveries) == 3


def test_tokens_go_out_after_a_few_steps_however_fast_the_steps(monkeypatch):
    monkeypatch.setattr(worker.time, "monotonic", Clock())  # time stands still: only the steps count
    loop, outbox, cancel = Loop(), _Outbox(), threading.Event()
    outbox.add(loop, None, ["first"], cancel, urgent=True)
    outbox.flush_due()
    tokens = [f"t{step}" for step in range(2 * FLUSH_STEPS)]
    for token in tokens:
        outbox.add(loop, None, [token], cancel)
        outbox.flush_due()
    assert loop.deliveries == [["first"], tokens[:FLUSH_STEPS], tokens[FLUSH_STEPS:]]


def test_steps_with_nothing_pending_do_not_count_towards_a_delivery(monkeypatch):
    monkeypatch.setattr(worker.time, "monotonic", Clock())
    loop, outbox, cancel = Loop(), _Outbox(), threading.Event()
    outbox.add(loop, None, ["first"], cancel, urgent=True)
    outbox.flush_due()
    for _ in range(2 * FLUSH_STEPS):  # e.g. prefill chunks: no token comes out
        outbox.flush_due()
    outbox.add(loop, None, ["a"], cancel)
    outbox.flush_due()
    assert loop.deliveries == [["first"]]
