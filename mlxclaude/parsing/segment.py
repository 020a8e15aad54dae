"""Runs of text or thinking, stripped at both ends the same way however the stream was chunked."""

from __future__ import annotations

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece


class Segment:
    """One run of text or thinking, stripped at both ends.

    Trailing whitespace is held until something other than whitespace follows it, so the
    result is the same however the stream was chunked.
    """

    def __init__(self) -> None:
        self.started = False
        self._pending_whitespace = ""

    def add(self, text: str, piece: type[TextPiece] | type[ThinkingPiece]) -> list[ReplyEvent]:
        if not self.started:
            text = text.lstrip()
            if not text:
                return []
            self.started = True
        text = self._pending_whitespace + text
        body = text.rstrip()
        self._pending_whitespace = text[len(body) :]
        return [piece(body)] if body else []

    def end(self) -> None:
        self.started = False
        self._pending_whitespace = ""


def earliest(buffer: str, markers: tuple[str, ...]) -> tuple[int, str] | None:
    """The first marker occurrence in `buffer`; at equal positions the longer marker wins."""
    best: tuple[int, int, str] | None = None
    for marker in markers:
        start = buffer.find(marker)
        if start >= 0 and (best is None or (start, -len(marker)) < best[:2]):
            best = (start, -len(marker), marker)
    return None if best is None else (best[0], best[2])
