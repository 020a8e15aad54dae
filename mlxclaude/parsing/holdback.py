"""Hold back the tail of a stream that could still grow into a marker, so half a marker never leaks."""

from __future__ import annotations

from collections.abc import Iterable


def partial_marker_length(buffer: str, markers: Iterable[str]) -> int:
    """Length of the longest suffix of `buffer` that is a proper prefix of one of `markers`."""
    longest = 0
    end = len(buffer)
    for marker in markers:
        if not marker:
            continue
        at = buffer.find(marker[0], max(0, end - len(marker) + 1))
        while at >= 0 and end - at > longest:
            if marker.startswith(buffer[at:]):
                longest = end - at
                break
            at = buffer.find(marker[0], at + 1)
    return longest


def split_safe(buffer: str, markers: Iterable[str]) -> tuple[str, str]:
    """Split `buffer` into (safe to pass on, held back because it may start a marker)."""
    held = partial_marker_length(buffer, markers)
    cut = len(buffer) - held
    return buffer[:cut], buffer[cut:]
