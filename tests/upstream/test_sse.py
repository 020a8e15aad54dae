"""Reading an upstream's SSE body: every byte scanned once, whatever the chunking; lines capped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlxclaude.upstream.sse import SSEEvents, SSELines, SSELineTooLong


def test_a_20_mb_line_in_small_pieces_is_scanned_once_then_refused():
    cap = 16 * 1024 * 1024
    body = b"data: " + b"x" * (20 * 1024 * 1024) + b"\n\n"
    lines = SSELines(max_line=cap)
    fed = 0
    with pytest.raises(SSELineTooLong):
        for start in range(0, len(body), 4096):
            piece = body[start:start + 4096]
            fed += len(piece)
            lines.feed(piece)
    assert fed <= cap + 4096  # refused as soon as the line passed the cap
    assert lines.scanned == fed  # each byte looked at once, not once per piece (quadratic)


def test_a_line_at_the_cap_passes():
    lines = SSELines(max_line=10)
    assert lines.feed(b"0123456789\r\nab") == [b"0123456789"]
    assert lines.partial
    assert lines.feed(b"c\n") == [b"abc"] and not lines.partial


@given(st.lists(st.integers(0, 200), max_size=10))
def test_events_are_the_same_however_the_body_is_split(cuts):
    body = (b"event: a\ndata: {\"n\": 1}\n\n: comment\n\nevent: b\r\ndata: x\r\ndata: y\r\n\r\n"
            b"data: [DONE]\n\n")
    edges = [0, *sorted(min(cut, len(body)) for cut in cuts), len(body)]
    reader = SSEEvents()
    events = [event for a, b in zip(edges, edges[1:]) for event in reader.feed(body[a:b])]
    assert [(event.name, event.data) for event in events] == [("a", '{"n": 1}'), (None, ""), ("b", "x\ny"),
                                                                 (None, "[DONE]")]
    assert b"".join(event.raw for event in events) == body.replace(b"\r", b"")
    assert not reader.partial
