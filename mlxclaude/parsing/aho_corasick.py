"""Aho–Corasick automaton over characters: the first stop sequence to complete in a stream.

Written here in pure Python because pyahocorasick (a C extension, a new dependency) keeps its search
state across chunks but does not expose the current state's depth, which is exactly the tail a
streaming stop matcher must hold back.

Building is linear in the total length of the patterns (plus sorting them) and is done eagerly by
the constructor. Scanning costs amortised O(1) per character whatever the number of patterns:
each character takes one goto edge at most, and every fail edge taken shortens the current match,
which only goto edges lengthen. The state is a plain int: a caller keeps it between chunks and
feeds only the new characters.

Layout, chosen for memory (a million random patterns make ~15M nodes; a dict per node would take
GBs): nodes are numbered in depth-first preorder of the trie built from the sorted patterns, so the
first child of node `u` is `u + 1`, and only the other children need a dict entry (about one per
pattern). Per node: three 4-byte array slots (the edge's code point, flagged unless the node is the
first child of the node numbered just before it; depth; fail link). Patterns that have a shorter
pattern as a prefix are dropped: the shorter one always completes first, so their deeper nodes
could never be reached.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

ROOT = 0
_CHAR_BITS = 21  # every code point is below 0x110000 == 2**21
_NOT_FIRST = 1 << _CHAR_BITS  # label flag: this node is not the first child of the node before it
_CODE = _NOT_FIRST - 1
_SENTINEL = 2 * _NOT_FIRST  # label of the extra node past the end: equal to no code point


class StopAutomaton:
    """Goto/fail/output links for a set of non-empty patterns (empty ones are ignored)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._label = array("I", [0])  # code point on the edge into each node, see _NOT_FIRST
        self._depth = array("I", [0])  # length of the node's string
        self._root: dict[int, int] = {}  # code point -> child of the root
        self._branch: dict[int, int] = {}  # (node << 21 | code point) -> other child, not root's
        self._out: dict[int, int] = {}  # node -> length of the longest pattern that is its suffix
        self._fail = array("I")  # the longest proper suffix of the node's string that is a node
        chains = self._build_trie(sorted({p for p in patterns if p}))
        self._label.append(_SENTINEL)  # so that `label[state + 1]` exists for every state
        self._depth.append(0)
        self._build_links(chains)

    @property
    def size(self) -> int:
        """Number of states, the root included."""
        return len(self._label) - 1

    def depth(self, state: int) -> int:
        """Length of the longest suffix of the text seen that is a prefix of some pattern."""
        return self._depth[state]

    def advance(self, state: int, text: str) -> tuple[int, int, int]:
        """Scan `text` from `state`; stop at the first pattern to complete.

        Returns (new state, index in `text` of the character that completed a pattern or -1,
        length of the longest pattern completing there or 0). After a match the new state is the
        one reached on that character; the rest of `text` is not scanned.
        """
        out, step = self._out, self._step
        for index, char in enumerate(text):
            state = step(state, ord(char))
            if state in out:
                return state, index, out[state]
        return state, -1, 0

    def _step(self, state: int, code: int) -> int:
        """The goto edge for `code` from `state`, following fail links until one exists."""
        label, branch = self._label, self._branch
        while state:
            if label[state + 1] == code:  # the first child
                return state + 1
            child = branch.get((state << _CHAR_BITS) | code, -1)
            if child >= 0:
                return child
            state = self._fail[state]
        return self._root.get(code, ROOT)

    def _build_trie(self, patterns: list[str]) -> list[list[tuple[int, int]]]:
        """Insert the sorted patterns in preorder; return, per depth, the chains of nodes starting
        there as (first node minus its depth, last depth): a chain is one pattern's new nodes."""
        label, depth, root, branch, out, fail = (
            self._label, self._depth, self._root, self._branch, self._out, self._fail)
        chains: list[list[tuple[int, int]]] = [[]]
        path = [ROOT]  # node ids along the last pattern kept
        previous = ""
        for pattern in patterns:
            if previous and pattern.startswith(previous):
                continue  # `previous` (or a duplicate) always completes first
            shared = 0
            limit = min(len(previous), len(pattern))
            while shared < limit and previous[shared] == pattern[shared]:
                shared += 1
            first, parent, code = len(label), path[shared], ord(pattern[shared])
            if parent == ROOT:
                root[code] = first
            else:
                branch[(parent << _CHAR_BITS) | code] = first
            label.append(code if first == parent + 1 else code | _NOT_FIRST)
            label.extend(map(ord, pattern[shared + 1:]))
            depth.extend(range(shared + 1, len(pattern) + 1))
            fail.extend(range(first - 1, len(label) - 1))  # parents, until the links overwrite them
            fail[first - 1] = parent
            del path[shared + 1:]
            path.extend(range(first, len(label)))
            out[len(label) - 1] = len(pattern)
            while len(chains) <= shared + 1:
                chains.append([])
            chains[shared + 1].append((first - shared - 1, len(pattern)))
            previous = pattern
        return chains

    def _build_links(self, chains: list[list[tuple[int, int]]]) -> None:
        """Fail and output links, level by level: a fail link always points to a shallower node."""
        label, fail, out = self._label, self._fail, self._out
        fail.insert(0, ROOT)
        active: list[tuple[int, int]] = []
        for level in range(1, max(self._depth) + 1):
            active = [chain for chain in active if chain[1] >= level]
            if level < len(chains):
                active += chains[level]
            for offset, _ in active:
                node = offset + level
                # fail[node] holds the parent until now; the root's children fail to the root
                state = self._step(fail[fail[node]], label[node] & _CODE) if level > 1 else ROOT
                fail[node] = state
                if state in out and node not in out:
                    out[node] = out[state]
