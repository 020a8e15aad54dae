"""Finding a family's open markers in the decoded token stream, one token behind or exactly. Pure.

The decoder hands tokens to the constraint processor one step late (mlx-lm samples token j before
token j-1 is known on the CPU). `MarkerWatch` follows the text of the tokens known so far; for the
unknown last token, `TokenTexts.completers(marker, matched)` says which token ids would complete the
marker given the `matched` bytes of it already at the end of the text, split into those that end
exactly at the marker's end and those that run past it ("overshoot": their tail is the call's first
bytes). Exact completers are handled lazily on the device; overshooting ones need the token's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from mlxclaude.parsing.holdback import first_byte_of


@dataclass(frozen=True)
class Completers:
    exact: tuple[int, ...] = ()
    overshoot: dict[int, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.exact or self.overshoot)


class TokenTexts:
    """Every token's bytes, with the indexes marker look-ups need (built once per model, lazily)."""

    def __init__(self, table: Sequence[bytes]) -> None:
        self.table = list(table)
        self._by_first: Optional[dict[int, list[int]]] = None
        self._containing: dict[bytes, list[int]] = {}
        self._completers: dict[tuple[bytes, int], Completers] = {}
        self._starting: dict[bytes, list[int]] = {}
        self._holding: dict[bytes, frozenset[int]] = {}

    def quote_closers(self) -> list[int]:
        """Tokens that are a quote followed only by `}`, `]` and blanks: they end a string and go up."""
        found = self._starting.get(b"quote-closers")
        if found is None:
            found = [token for token in self.starting(b'"') if not self.table[token][1:].strip(b"}] \t\r\n")]
            self._starting[b"quote-closers"] = found
        return found

    def pure_closers(self) -> list[int]:
        """Tokens made only of `}`, `]` and blanks (at least one bracket): they only go up."""
        found = self._starting.get(b"pure-closers")
        if found is None:
            found = [token for token in self.starting(b"}]") if not self.table[token].strip(b"}] \t\r\n")]
            self._starting[b"pure-closers"] = found
        return found

    def holding(self, pattern: "re.Pattern[bytes]") -> frozenset[int]:
        """Tokens in whose bytes `pattern` finds something (cached by pattern)."""
        found = self._holding.get(pattern.pattern)
        if found is None:
            found = frozenset(token for token, data in enumerate(self.table) if pattern.search(data))
            self._holding[pattern.pattern] = found
        return found

    def starting(self, firsts: bytes) -> list[int]:
        """Tokens whose first byte is one of `firsts` (cached)."""
        found = self._starting.get(firsts)
        if found is None:
            index = self._first_index()
            found = sorted(token for first in firsts for token in index.get(first, ()))
            self._starting[firsts] = found
        return found

    def __len__(self) -> int:
        return len(self.table)

    def text(self, token: int) -> bytes:
        return self.table[token] if 0 <= token < len(self.table) else b""

    def _first_index(self) -> dict[int, list[int]]:
        if self._by_first is None:
            index: dict[int, list[int]] = {}
            for token, data in enumerate(self.table):
                if data:
                    index.setdefault(data[0], []).append(token)
            self._by_first = index
        return self._by_first

    def containing(self, marker: bytes) -> list[int]:
        found = self._containing.get(marker)
        if found is None:
            found = [token for token, data in enumerate(self.table) if marker in data]
            self._containing[marker] = found
        return found

    def completers(self, marker: bytes, matched: int) -> Completers:
        """Tokens that complete `marker` when the text ends with its first `matched` bytes."""
        key = (marker, matched)
        cached = self._completers.get(key)
        if cached is not None:
            return cached
        candidates = set(self.containing(marker))
        head = marker[:matched]
        for length in borders(marker, matched):
            rest = marker[length:]
            for token in self._first_index().get(rest[0], ()):
                if self.table[token].startswith(rest):
                    candidates.add(token)
        exact, overshoot = [], {}
        for token in sorted(candidates):
            combined = head + self.table[token]
            end = combined.find(marker) + len(marker)
            tail = combined[end:]
            if tail:
                overshoot[token] = tail
            else:
                exact.append(token)
        result = Completers(tuple(exact), overshoot)
        self._completers[key] = result
        return result


def borders(marker: bytes, matched: int) -> list[int]:
    """The lengths L ≥ 1 with marker[:L] a suffix of marker[:matched] (matched itself first)."""
    head = marker[:matched]
    return [length for length in range(matched, 0, -1) if head.endswith(marker[:length])]


class MarkerWatch:
    """Follows the reply's text (as token bytes) for open markers, outside thinking.

    `feed(data)` returns (marker index, the bytes after the marker in what was fed) when a marker
    completes; the watch is then spent until `reset()`.
    """

    def __init__(self, markers: Sequence[bytes], *, think_open: Optional[bytes] = None,
                 think_close: Optional[bytes] = None, thinking: bool = False) -> None:
        self.markers = list(markers)
        self.think_open = think_open if think_open and think_close else None
        self.think_close = think_close if self.think_open else None
        self.thinking = bool(thinking and self.think_open)
        lengths = [len(m) for m in self.markers] + [len(self.think_open or b""), len(self.think_close or b"")]
        self._keep = max(lengths, default=1) - 1
        self._tail = b""
        # a byte a marker or a thinking tag starts with: text without any can hold no part of one
        self.first = first_byte_of([*self.markers, self.think_open or b"", self.think_close or b""])

    @property
    def at_rest(self) -> bool:
        """Whether the text so far ends with no part of any marker (the usual case in prose and code)."""
        return not self._tail

    def reset(self) -> None:
        self._tail = b""
        self.thinking = False

    def matched(self, index: int) -> int:
        """How many bytes of marker `index` the text ends with (0 inside thinking)."""
        if self.thinking:
            return 0
        marker, tail = self.markers[index], self._tail
        for length in range(min(len(tail), len(marker) - 1), 0, -1):
            if tail.endswith(marker[:length]):
                return length
        return 0

    def feed(self, data: bytes) -> Optional[tuple[int, bytes]]:
        buffer = self._tail + data if self._tail else data
        if self.first.search(buffer) is None:
            self._tail = b""  # nothing here can start a marker or a tag: none is found, none is begun
            return None
        pos = 0
        while True:
            if self.thinking:
                assert self.think_close is not None
                at = buffer.find(self.think_close, pos)
                if at < 0:
                    break
                pos = at + len(self.think_close)
                self.thinking = False
                continue
            found = self._earliest(buffer, pos)
            if found is None:
                break
            at, index = found
            if index < 0:  # thinking opens
                pos = at + len(self.think_open or b"")
                self.thinking = True
                continue
            self._tail = b""
            return index, buffer[at + len(self.markers[index]):]
        start = max(pos, len(buffer) - self._keep) if self._keep else len(buffer)
        self._tail = buffer[start:]
        return None

    def _earliest(self, buffer: bytes, pos: int) -> Optional[tuple[int, int]]:
        best: Optional[tuple[int, int]] = None
        needles = [(-1, self.think_open)] if self.think_open else []
        needles += list(enumerate(self.markers))
        for index, needle in needles:
            at = buffer.find(needle, pos)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, index)
        return best


class JsonPosition:
    """Whether the bytes seen so far end inside a JSON string (for finishing a call early)."""

    def __init__(self) -> None:
        self.in_string = False
        self.escaped = False

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:  # backslash
                    self.escaped = True
                elif byte == 0x22:  # quote
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
