"""Reading a remote engine's SSE body: bytes in, lines or whole events out. Each byte is scanned once
(a 50 MB line arriving in 64 KB pieces is not re-scanned per piece), and no line may exceed a cap, so a
hostile or broken upstream cannot make us quadratic or hold unbounded memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Optional

from mlxclaude.protocol.errors import ApiError

MAX_SSE_LINE_BYTES = 16 * 1024 * 1024


class SSELineTooLong(Exception):
    def __init__(self, cap: int) -> None:
        super().__init__(f"an SSE line longer than {cap} bytes")
        self.cap = cap


class SSELines:
    """Feed byte chunks, get the complete lines (without their `\\n` or `\\r\\n`). `scanned` counts the bytes
    looked at, which stays the number of bytes fed."""

    def __init__(self, max_line: int = MAX_SSE_LINE_BYTES) -> None:
        self.max_line = max_line
        self.scanned = 0
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self.scanned += end + 1 - start
            piece = chunk[start:end]
            if self._parts:
                self._check(self._size + len(piece) - piece.endswith(b"\r"))
                piece, self._parts, self._size = b"".join(self._parts) + piece, [], 0
            piece = piece[:-1] if piece.endswith(b"\r") else piece
            self._check(len(piece))
            lines.append(piece)
            start = end + 1
        rest = chunk[start:]
        self.scanned += len(rest)
        if rest:
            self._check(self._size + len(rest))
            self._parts.append(rest)
            self._size += len(rest)
        return lines

    @property
    def partial(self) -> bool:
        """Bytes of an unfinished line are waiting (the body ended mid-line)."""
        return self._size > 0

    def _check(self, size: int) -> None:
        if size > self.max_line:
            raise SSELineTooLong(self.max_line)


@dataclass(frozen=True)
class SSEEvent:
    raw: bytes                 # the event as it came, ending with its blank line
    name: Optional[str]        # its `event:` field
    data: str                  # its `data:` lines joined with "\n"


class SSEEvents:
    """Lines in, whole events out (an event ends at a blank line); comments and unknown fields are kept in
    `raw` (a comment alone is an event with no name and no data: a keep-alive worth passing on)."""

    def __init__(self, max_line: int = MAX_SSE_LINE_BYTES) -> None:
        self.lines = SSELines(max_line)
        self._raw: list[bytes] = []
        self._name: Optional[str] = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in self.lines.feed(chunk):
            self._raw.append(line)
            if not line:
                if any(self._raw[:-1]):
                    events.append(SSEEvent(b"\n".join(self._raw) + b"\n", self._name, "\n".join(self._data)))
                self._raw, self._name, self._data = [], None, []
                continue
            field, _, value = line.decode("utf-8", errors="replace").partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                self._name = value
            elif field == "data":
                self._data.append(value)
        return events

    @property
    def partial(self) -> bool:
        """An event had begun when the body ended."""
        return self.lines.partial or any(self._raw)


async def sse_lines(chunks: AsyncIterator[bytes], lines: SSELines) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        for line in lines.feed(chunk):
            yield line


def line_too_long(backend: str, exc: SSELineTooLong) -> ApiError:
    return ApiError.api_error(f"{backend}: the upstream reply broke off: one line of its stream is longer than "
                              f"{exc.cap // (1024 * 1024)} MiB")


def broke_off(backend: str, why: str) -> ApiError:
    return ApiError.api_error(f"{backend}: the upstream reply broke off ({why})")
