"""A radix trie over token-id sequences. Pure Python, no mlx.

Every stored sequence (a cache entry's prompt tokens) ends at a node holding its value. Edges carry runs
of tokens, so a 20k-token system prompt shared by many entries costs one edge, and a lookup compares
whole runs with C-speed list slices rather than walking token by token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Iterator, Optional, Sequence, TypeVar

V = TypeVar("V")
_NOTHING = object()


def common_prefix_length(a: Sequence[int], b: Sequence[int], a_start: int = 0, b_start: int = 0,
                         limit: Optional[int] = None) -> int:
    """Length of the common prefix of a[a_start:] and b[b_start:] (at most `limit`), compared in growing chunks."""
    n = min(len(a) - a_start, len(b) - b_start)
    if limit is not None:
        n = min(n, limit)
    if type(a) is not type(b):
        a, b = list(a), list(b)
    done, step = 0, 32
    while done < n:
        end = min(done + step, n)
        if a[a_start + done:a_start + end] == b[b_start + done:b_start + end]:
            done = end
            step = min(step * 2, 8192)
            continue
        while a[a_start + done] == b[b_start + done]:
            done += 1
        return done
    return done


@dataclass(eq=False)
class _Node(Generic[V]):
    edge: list[int] = field(default_factory=list)  # tokens on the edge from the parent to this node
    children: dict[int, "_Node[V]"] = field(default_factory=dict)
    value: object = _NOTHING

    @property
    def has_value(self) -> bool:
        return self.value is not _NOTHING


@dataclass(frozen=True)
class Walk(Generic[V]):
    """Where a token sequence meets the trie.

    matched: how many leading tokens of the query some stored sequence shares (the longest common prefix).
    prefixes: (length, value) of every stored sequence that is a prefix of the query, shortest first.
    below: values of the stored sequences that share all `matched` tokens but are not prefixes of the query
      (they go on past the query or diverge from it right after `matched`).
    """

    matched: int
    prefixes: list[tuple[int, V]]
    below: list[tuple[int, V]]


class TokenTrie(Generic[V]):
    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, tokens: Sequence[int]) -> bool:
        return self.get(tokens) is not None

    # --- lookup --------------------------------------------------------------------------------------

    def _path_to(self, tokens: Sequence[int]) -> Optional[list[_Node[V]]]:
        """The nodes from the root to the one that ends exactly at `tokens` (None when none does)."""
        path = [self._root]
        depth = 0
        while depth < len(tokens):
            child = path[-1].children.get(tokens[depth])
            if child is None:
                return None
            shared = common_prefix_length(child.edge, tokens, 0, depth)
            if shared < len(child.edge):
                return None
            path.append(child)
            depth += shared
        return path

    def _find(self, tokens: Sequence[int]) -> Optional[_Node[V]]:
        path = self._path_to(tokens)
        return path[-1] if path is not None else None

    def get(self, tokens: Sequence[int]) -> Optional[V]:
        node = self._find(tokens)
        return node.value if node is not None and node.has_value else None  # type: ignore[return-value]

    def walk(self, tokens: Sequence[int]) -> Walk[V]:
        prefixes: list[tuple[int, V]] = []
        node, depth = self._root, 0
        if node.has_value:
            prefixes.append((0, node.value))  # type: ignore[arg-type]
        while True:
            child = node.children.get(tokens[depth]) if depth < len(tokens) else None
            if child is None:
                below = [item for item in self._values_under(node, depth) if item[0] > depth]
                return Walk(depth, prefixes, below)
            shared = common_prefix_length(child.edge, tokens, 0, depth)
            if shared < len(child.edge):  # the query ends or diverges inside this edge
                return Walk(depth + shared, prefixes, list(self._values_under(child, depth + len(child.edge))))
            node, depth = child, depth + shared
            if node.has_value:
                prefixes.append((depth, node.value))  # type: ignore[arg-type]

    def longest_prefix(self, tokens: Sequence[int], max_length: Optional[int] = None) -> Optional[tuple[int, V]]:
        """The longest stored sequence that is a prefix of `tokens` (and no longer than max_length)."""
        best = None
        for length, value in self.walk(tokens).prefixes:
            if max_length is None or length <= max_length:
                best = (length, value)
        return best

    def _values_under(self, node: _Node[V], depth: int) -> Iterator[tuple[int, V]]:
        stack = [(node, depth)]
        while stack:
            current, at = stack.pop()
            if current.has_value:
                yield at, current.value  # type: ignore[misc]
            for child in current.children.values():
                stack.append((child, at + len(child.edge)))

    def items(self) -> Iterator[tuple[list[int], V]]:
        stack: list[tuple[_Node[V], list[int]]] = [(self._root, [])]
        while stack:
            node, prefix = stack.pop()
            if node.has_value:
                yield prefix, node.value  # type: ignore[misc]
            for child in node.children.values():
                stack.append((child, prefix + child.edge))

    # --- mutation ------------------------------------------------------------------------------------

    def insert(self, tokens: Sequence[int], value: V) -> Optional[V]:
        """Store `value` under `tokens`; returns the value it replaced, if any."""
        node, depth = self._root, 0
        while depth < len(tokens):
            first = tokens[depth]
            child = node.children.get(first)
            if child is None:
                leaf: _Node[V] = _Node(edge=list(tokens[depth:]))
                node.children[first] = leaf
                node = leaf
                depth = len(tokens)
                break
            shared = common_prefix_length(child.edge, tokens, 0, depth)
            if shared < len(child.edge):  # split the edge at the divergence
                middle: _Node[V] = _Node(edge=child.edge[:shared])
                child.edge = child.edge[shared:]
                middle.children[child.edge[0]] = child
                node.children[first] = middle
                child = middle
            node, depth = child, depth + shared
        previous = node.value if node.has_value else None
        if not node.has_value:
            self._size += 1
        node.value = value
        return previous  # type: ignore[return-value]

    def remove(self, tokens: Sequence[int]) -> Optional[V]:
        """Remove the value stored under exactly `tokens`; returns it (None when there was none)."""
        path = self._path_to(tokens)
        if path is None or not path[-1].has_value:
            return None
        node = path[-1]
        value = node.value
        node.value = _NOTHING
        self._size -= 1
        self._compact(path)
        return value  # type: ignore[return-value]

    def _compact(self, path: list[_Node[V]]) -> None:
        """Drop valueless leaves and merge valueless single-child nodes into their child, bottom up."""
        for index in range(len(path) - 1, 0, -1):
            node, parent = path[index], path[index - 1]
            if node.has_value:
                return
            if not node.children:
                del parent.children[node.edge[0]]
                continue
            if len(node.children) == 1:
                (only,) = node.children.values()
                only.edge = node.edge + only.edge
                parent.children[node.edge[0]] = only
            return

    def clear(self) -> None:
        self._root = _Node()
        self._size = 0
