"""Client `stop_sequences`: cut the reply at the first stop sequence that completes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from mlxclaude.parsing.aho_corasick import ROOT, StopAutomaton


class StopMatcher:
    """Streams text through, holding back any tail that could still become a stop sequence.

    When several stop sequences could match, the one that completes first in the stream wins
    (ties go to the longer one), so the result does not depend on how the text was chunked.
    Empty stop sequences are ignored; duplicates are harmless.

    The constructor builds an Aho–Corasick automaton, in time linear in the total length of the
    stop sequences (seconds for a million of them: construct it off the event loop). Each `feed`
    then costs time linear in the new text only, whatever the number of stop sequences. The tail
    held back is exactly the automaton's depth: the longest suffix of the text seen that is a
    proper prefix of a stop sequence.
    """

    def __init__(self, stop_sequences: Iterable[str]) -> None:
        self.stop_sequences: tuple[str, ...] = tuple(s for s in stop_sequences if s)
        self.matched: str | None = None
        self._automaton = StopAutomaton(self.stop_sequences) if self.stop_sequences else None
        self._state = ROOT
        self._held: deque[str] = deque()  # pieces of the held-back tail, oldest first
        self._held_offset = 0  # characters of self._held[0] already passed on
        self._held_length = 0

    def feed(self, text: str) -> tuple[str, str | None]:
        """Return (text safe to pass on, the stop sequence that just completed or None).

        After a match, everything from the stop sequence on is discarded, as is any later input.
        """
        if self.matched is not None:
            return "", None
        if self._automaton is None:
            return text, None
        if not text:
            return "", None
        state, end, length = self._automaton.advance(self._state, text)
        self._held.append(text)
        self._held_length += len(text)
        if end < 0:
            self._state = state
            return self._take(self._held_length - self._automaton.depth(state)), None
        safe = self._take(self._held_length - (len(text) - end - 1) - length)
        self.matched = self._take(length)
        self._clear()
        return safe, self.matched

    def flush(self) -> str:
        """Return the held-back tail at the end of generation (it never became a stop sequence)."""
        held = self._take(self._held_length)
        self._clear()
        return held

    def _take(self, count: int) -> str:
        """Remove and return the first `count` held characters (cost: proportional to `count`)."""
        parts: list[str] = []
        self._held_length -= count
        while count > 0:
            head, offset = self._held[0], self._held_offset
            available = len(head) - offset
            if available <= count:
                parts.append(head[offset:] if offset else head)
                self._held.popleft()
                self._held_offset = 0
                count -= available
            else:
                parts.append(head[offset:offset + count])
                self._held_offset += count
                count = 0
        return "".join(parts)

    def _clear(self) -> None:
        self._held.clear()
        self._held_offset = self._held_length = 0
        self._state = ROOT
