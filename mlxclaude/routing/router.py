"""Claude Code's model id → a route ([routes]) → the backends to try, in order (the route's, then its fallbacks).

Patterns are globs where only `*` (any run of characters) and `?` (one character) are wildcards: every
other character, `[` and `]` included, is literal, so "claude-sonnet-4-5[1m]" matches that id exactly.
Matching ignores case. The most specific matching pattern wins: a pattern without wildcards beats any glob;
among globs, more literal characters, then fewer wildcards, then the earlier one in the file. "*" matches
everything, so it is the default.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from mlxclaude.routing.config import DEFAULT_ROUTE, LOCAL, RoutingConfig


@dataclass(frozen=True)
class Route:
    pattern: str
    backend: str


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression for re.fullmatch (case-insensitive; `*` and `?` the only wildcards)."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def specificity(pattern: str, index: int = 0) -> tuple[int, int, int, int]:
    """A sort key: the smaller, the more specific (exact first; more literals; fewer wildcards; file order)."""
    wildcards = sum(char in "*?" for char in pattern)
    return (1 if wildcards else 0, -(len(pattern) - wildcards), wildcards, index)


class Router:
    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        routes = list(config.routes)
        if not any(pattern == DEFAULT_ROUTE for pattern, _ in routes):
            routes.append((DEFAULT_ROUTE, LOCAL))
        ranked = sorted(enumerate(routes), key=lambda item: specificity(item[1][0], item[0]))
        self._routes = [(compile_pattern(pattern), Route(pattern, backend)) for _, (pattern, backend) in ranked]

    def route(self, model_id: str) -> Route:
        """The most specific route whose pattern matches `model_id`."""
        for regex, route in self._routes:
            if regex.fullmatch(model_id):
                return route
        raise AssertionError("the default route matches every id")

    def chain(self, model_id: str) -> list[str]:
        """The route's backend, then its fallbacks, theirs in turn (breadth-first), each backend once."""
        first = self.route(model_id).backend
        order, queue = [first], deque([first])
        while queue:
            for name in self.config.fallbacks.get(queue.popleft(), ()):
                if name not in order:
                    order.append(name)
                    queue.append(name)
        return order
