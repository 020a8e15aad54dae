"""Hold back the tail of a stream that could still grow into a marker, so half a marker never leaks."""

from __future__ import annotations

import re
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


def first_char_of(markers: Iterable[str]) -> "re.Pattern[str]":
    """A pattern that finds any character one of `markers` starts with, and nothing when there is none: text it
    does not find holds no marker and no beginning of one."""
    firsts = sorted({marker[0] for marker in markers if marker})
    return re.compile("[" + "".join(re.escape(first) for first in firsts) + "]" if firsts else "(?!)")


def first_byte_of(markers: Iterable[bytes]) -> "re.Pattern[bytes]":
    """`first_char_of` for bytes (each byte read as the latin-1 character of the same value)."""
    return re.compile(first_char_of(marker.decode("latin-1") for marker in markers).pattern.encode("latin-1"))
