"""Polling for a condition another thread or process brings about."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    """The first truthy value `predicate()` returns; AssertionError when none comes within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
