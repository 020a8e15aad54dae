"""Client `stop_sequences`: cut the reply at the first stop sequence that completes."""

from __future__ import annotations

from collections.abc import Iterable

from mlxclaude.parsing.holdback import split_safe


class StopMatcher:
    """Streams text through, holding back any tail that could still become a stop sequence.

    When several stop sequences could match, the one that completes first in the stream wins
    (ties go to the longer one), so the result does not depend on how the text was chunked.
    """

    def __init__(self, stop_sequences: Iterable[str]) -> None:
        self.stop_sequences: tuple[str, ...] = tuple(s for s in stop_sequences if s)
        self.matched: str | None = None
        self._held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Return (text safe to pass on, the stop sequence that just completed or None).

        After a match, everything from the stop sequence on is discarded, as is any later input.
        """
        if self.matched is not None:
            return "", None
        if not self.stop_sequences:
            return text, None
        buffer = self._held + text
        match = self._first_completed(buffer)
        if match is not None:
            start, stop = match
            self._held = ""
            self.matched = stop
            return buffer[:start], stop
        safe, self._held = split_safe(buffer, self.stop_sequences)
        return safe, None

    def flush(self) -> str:
        """Return the held-back tail at the end of generation (it never became a stop sequence)."""
        held, self._held = self._held, ""
        return held

    def _first_completed(self, buffer: str) -> tuple[int, str] | None:
        best: tuple[int, int, str] | None = None  # (end, -length, stop)
        for stop in self.stop_sequences:
            start = buffer.find(stop)
            if start < 0:
                continue
            candidate = (start + len(stop), -len(stop), stop)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            return None
        end, _, stop = best
        return end - len(stop), stop
