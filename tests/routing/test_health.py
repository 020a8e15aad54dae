import threading

from mlxclaude.routing.config import BackendSpec
from mlxclaude.routing.health import BackendHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SPECS = {
    "local": BackendSpec(name="local", kind="mlx", model="m"),
    "gpu": BackendSpec(name="gpu", kind="openai", url="http://h/v1", cooldown_s=30.0, cooldown_after=2),
    "once": BackendSpec(name="once", kind="openai", url="http://h/v1", cooldown_s=10.0, cooldown_after=1),
}


def health():
    clock = Clock()
    return BackendHealth(SPECS, clock=clock), clock


def test_a_new_backend_is_ok():
    tracker, _ = health()
    assert tracker.state("gpu") == "ok" and not tracker.cooling("gpu")
    assert tracker.facts("gpu") == {"state": "ok", "failures": 0, "cooldown_left_s": None, "last_error": None}


def test_cooldown_starts_after_cooldown_after_failures_and_ends():
    tracker, clock = health()
    tracker.failed("gpu", "cannot reach http://h/v1")
    assert tracker.state("gpu") == "failing" and not tracker.cooling("gpu")
    assert tracker.facts("gpu")["failures"] == 1
    clock.now += 5
    tracker.failed("gpu", "503 overloaded")
    assert tracker.cooling("gpu") and tracker.state("gpu") == "cooling down"
    clock.now += 12.34
    assert tracker.facts("gpu") == {"state": "cooling down", "failures": 2, "cooldown_left_s": 17.7,
                                    "last_error": "503 overloaded"}
    clock.now += 17.66
    assert not tracker.cooling("gpu") and tracker.state("gpu") == "failing"
    assert tracker.facts("gpu")["cooldown_left_s"] is None


def test_a_failure_after_the_cooldown_starts_a_new_one_at_once():
    tracker, clock = health()
    tracker.failed("gpu", "x")
    tracker.failed("gpu", "x")
    clock.now += 31
    assert not tracker.cooling("gpu")
    tracker.failed("gpu", "still down")
    assert tracker.cooling("gpu") and tracker.facts("gpu")["cooldown_left_s"] == 30.0


def test_a_success_resets_the_count():
    tracker, clock = health()
    tracker.failed("gpu", "x")
    tracker.succeeded("gpu")
    assert tracker.state("gpu") == "ok"
    tracker.failed("gpu", "x")
    assert not tracker.cooling("gpu")
    tracker.failed("gpu", "x")
    clock.now += 31
    tracker.succeeded("gpu")
    tracker.failed("gpu", "x")
    assert not tracker.cooling("gpu") and tracker.facts("gpu")["failures"] == 1


def test_cooldown_after_one():
    tracker, clock = health()
    tracker.failed("once", "x")
    assert tracker.cooling("once")
    clock.now += 10
    assert not tracker.cooling("once")


def test_order_skips_backends_cooling_down():
    tracker, _ = health()
    chain = ["gpu", "once", "local"]
    assert tracker.order(chain) == chain
    tracker.failed("once", "x")
    assert tracker.order(chain) == ["gpu", "local"]
    tracker.failed("gpu", "x")
    assert tracker.order(chain) == ["gpu", "local"]  # one failure: not cooling yet
    tracker.failed("gpu", "x")
    assert tracker.order(chain) == ["local"]


def test_when_every_backend_is_cooling_the_chain_is_unchanged():
    tracker, _ = health()
    for _ in range(2):
        tracker.failed("gpu", "x")
    tracker.failed("once", "x")
    assert tracker.order(["once", "gpu"]) == ["once", "gpu"]
    assert tracker.order([]) == []


def test_unknown_backends_use_the_defaults():
    tracker, _ = health()
    tracker.failed("elsewhere", "x")
    assert tracker.state("elsewhere") == "failing"
    tracker.failed("elsewhere", "x")
    assert tracker.facts("elsewhere")["cooldown_left_s"] == BackendSpec.cooldown_s


def test_threads_count_every_failure():
    specs = {"gpu": BackendSpec(name="gpu", kind="openai", url="http://h", cooldown_after=10_000)}
    tracker = BackendHealth(specs)

    def fail():
        for _ in range(500):
            tracker.failed("gpu", "x")
            tracker.state("gpu")

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.facts("gpu")["failures"] == 4000
