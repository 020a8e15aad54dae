"""Feed model text to a ReplyParser in chunks and compare events independent of how it was chunked."""

from __future__ import annotations

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece
from mlxclaude.parsing.reply import ReplyParser


def parse_chunks(chunks: list[str], **parser_options) -> tuple[list[ReplyEvent], ReplyParser]:
    parser = ReplyParser(**parser_options)
    events: list[ReplyEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    return events, parser


def coalesce(events: list[ReplyEvent]) -> list[ReplyEvent]:
    merged: list[ReplyEvent] = []
    for event in events:
        previous = merged[-1] if merged else None
        if isinstance(event, (TextPiece, ThinkingPiece)) and type(previous) is type(event):
            merged[-1] = type(event)(previous.text + event.text)
        else:
            merged.append(event)
    return merged


def every_chunking(text: str) -> list[list[str]]:
    """The whole text, one character at a time, and every split into two pieces."""
    return [[text], list(text)] + [[text[:i], text[i:]] for i in range(1, len(text))]
