import re

import pytest

from mlxclaude.parsing.events import TextPiece, ThinkingPiece, ToolCall
from mlxclaude.protocol.blocks import thinking_signature
from mlxclaude.protocol.response import MessageBuilder
from mlxclaude.protocol.usage import Usage

USAGE = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=100)


def build(events, stop_reason="end_turn", stop_sequence=None):
    builder = MessageBuilder("msg_1", "local-model")
    for event in events:
        builder.feed(event)
    return builder.build(stop_reason, stop_sequence, USAGE)


def test_empty_reply_is_a_complete_message():
    assert build([]) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "local-model",
        "content": [],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": USAGE.to_wire(),
    }


@pytest.mark.parametrize(
    "events,expected_content",
    [
        ([TextPiece("a"), TextPiece(""), TextPiece("b")], [{"type": "text", "text": "ab"}]),
        (
            [ThinkingPiece("x"), ThinkingPiece("y"), TextPiece("z")],
            [
                {"type": "thinking", "thinking": "xy", "signature": thinking_signature("xy")},
                {"type": "text", "text": "z"},
            ],
        ),
        (
            [TextPiece("a"), ThinkingPiece("t"), TextPiece("b")],
            [
                {"type": "text", "text": "a"},
                {"type": "thinking", "thinking": "t", "signature": thinking_signature("t")},
                {"type": "text", "text": "b"},
            ],
        ),
        ([TextPiece("")], []),
    ],
)
def test_pieces_merge_into_blocks(events, expected_content):
    assert build(events)["content"] == expected_content


def test_tool_calls_become_tool_use_blocks_with_unique_ids():
    message = build(
        [TextPiece("Checking."), ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {})],
        stop_reason="tool_use",
    )
    text, first, second = message["content"]
    assert text == {"type": "text", "text": "Checking."}
    assert {k: first[k] for k in ("type", "name", "input")} == {
        "type": "tool_use",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert second["input"] == {}
    assert first["id"] != second["id"]
    assert all(re.fullmatch(r"toolu_[a-zA-Z0-9_-]+", block["id"]) for block in (first, second))
    assert message["stop_reason"] == "tool_use"


def test_stop_sequence_is_reported():
    message = build([TextPiece("<block>yes")], stop_reason="stop_sequence", stop_sequence="</block>")
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "</block>")


def test_signature_is_opaque_non_empty_and_stable():
    assert thinking_signature("a") == thinking_signature("a") != thinking_signature("b")
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", thinking_signature(""))


def test_message_validates_against_the_sdk_type():
    types = pytest.importorskip("anthropic.types")
    message = build([ThinkingPiece("t"), TextPiece("x"), ToolCall("f", {"a": 1})], stop_reason="tool_use")
    parsed = types.Message.model_validate(message)
    assert parsed.content[2].input == {"a": 1}
    assert parsed.usage.cache_read_input_tokens == 100


def test_thinking_display_omitted_gives_signed_empty_thinking_blocks():
    builder = MessageBuilder("msg_1", "local-model", omit_thinking=True)
    for event in [ThinkingPiece("secret "), ThinkingPiece("plan"), TextPiece("answer")]:
        builder.feed(event)
    content = builder.build("end_turn", None, USAGE)["content"]
    assert content == [{"type": "thinking", "thinking": "", "signature": thinking_signature("secret plan")},
                       {"type": "text", "text": "answer"}]


def test_usage_carries_the_newer_optional_fields():
    wire = Usage(input_tokens=3, output_tokens=2, cache_creation_input_tokens=7).to_wire()
    assert wire["cache_creation"] == {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 0}
    assert wire["server_tool_use"] is None and wire["output_tokens_details"] is None
