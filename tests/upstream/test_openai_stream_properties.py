"""OpenAIStreamReader however the upstream splits its deltas: nothing lost, nothing doubled."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mlxclaude.upstream.openai_wire import OpenAIStreamReader, TextPiece, ToolCall


def split(text: str, cuts: list[int]) -> list[str]:
    cuts = sorted(set(cut for cut in cuts if 0 < cut < len(text)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def content_chunk(text: str) -> dict:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text},
                                                            "finish_reason": None}]}


def arguments_chunk(index: int, piece: str, name: str | None = None) -> dict:
    item: dict = {"index": index, "function": {"arguments": piece}}
    if name is not None:
        item.update(id=f"call_{index}", type="function")
        item["function"]["name"] = name
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [item]},
                                                            "finish_reason": None}]}


def read(chunks: list[dict], tools: list[dict]) -> list:
    reader = OpenAIStreamReader(tools=tools)
    events = [event for chunk in chunks for event in reader.feed(chunk)]
    tail, _ = reader.finish()
    return events + tail


@settings(max_examples=300, deadline=None)
@given(st.text(), st.lists(st.integers(0, 200), max_size=20))
def test_text_pieces_join_to_the_text(text, cuts):
    events = read([content_chunk(piece) for piece in split(text, cuts)], tools=[])
    assert all(isinstance(event, TextPiece) and event.text for event in events)
    assert "".join(event.text for event in events) == text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
OPEN_SCHEMA = [{"name": "any_tool", "input_schema": {"type": "object"}},
               {"name": "other", "input_schema": {"type": "object"}}]


@settings(max_examples=300, deadline=None)
@given(OBJECTS, st.lists(st.integers(0, 400), max_size=20), st.booleans())
def test_tool_call_arguments_survive_any_split(arguments, cuts, ascii_only):
    text = json.dumps(arguments, ensure_ascii=ascii_only)
    pieces = split(text, cuts)
    chunks = [arguments_chunk(0, "", "any_tool")] + [arguments_chunk(0, piece) for piece in pieces]
    assert read(chunks, OPEN_SCHEMA) == [ToolCall("any_tool", arguments)]


@settings(max_examples=200, deadline=None)
@given(OBJECTS, OBJECTS, st.lists(st.integers(0, 400), max_size=10), st.lists(st.integers(0, 400), max_size=10),
       st.randoms(use_true_random=False))
def test_two_interleaved_calls_survive_any_split(first, second, cuts_a, cuts_b, rng):
    a = [arguments_chunk(0, piece) for piece in split(json.dumps(first), cuts_a)]
    b = [arguments_chunk(1, piece) for piece in split(json.dumps(second), cuts_b)]
    merged = [arguments_chunk(0, "", "any_tool"), a.pop(0), arguments_chunk(1, "", "other")]
    while a or b:  # each call's pieces in order, the two calls interleaved at random
        source = a if (a and (not b or rng.random() < 0.5)) else b
        merged.append(source.pop(0))
    assert read(merged, OPEN_SCHEMA) == [ToolCall("any_tool", first), ToolCall("other", second)]
