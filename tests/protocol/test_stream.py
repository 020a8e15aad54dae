import json
import re

import pytest

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.protocol.blocks import json_fragments, thinking_signature
from mlxclaude.protocol.response import MessageBuilder
from mlxclaude.protocol.stream import StreamEncoder, encode_sse, error_event
from mlxclaude.protocol.usage import Usage

START_USAGE = Usage(input_tokens=295, output_tokens=1, cache_read_input_tokens=1800)
END_USAGE = Usage(input_tokens=295, output_tokens=87, cache_read_input_tokens=1800)

REPLIES: dict[str, list[ReplyEvent]] = {
    "empty": [],
    "text": [TextPiece("Hello"), TextPiece(", world.")],
    "thinking, text, tool": [
        ThinkingPiece("User wants Paris weather;"),
        ThinkingPiece(" call the tool."),
        TextPiece("Let me check the weather"),
        TextPiece(" in Paris."),
        ToolCall("get_weather", {"location": "Paris, France", "unit": "celsius"}),
    ],
    "parallel tools": [ToolCall("a", {}), ToolCall("b", {"x": [1, 2, {"y": None}]})],
    "interleaved": [
        ThinkingPiece("plan"),
        ToolCall("read", {"path": "/tmp/é \"q\" \\ " + "long " * 40}),
        ThinkingPiece("more"),
        TextPiece(""),
        TextPiece("done"),
    ],
    "only thinking": [ThinkingPiece("hmm")],
}


def encode(events: list[ReplyEvent], stop_reason="end_turn", stop_sequence=None):
    encoder = StreamEncoder("msg_test", "local-model")
    wire = encoder.start(START_USAGE)
    for event in events:
        wire += encoder.feed(event)
    wire += encoder.finish(stop_reason, stop_sequence, END_USAGE)
    return wire, encoder


def build(events: list[ReplyEvent], stop_reason="end_turn", stop_sequence=None):
    builder = MessageBuilder("msg_test", "local-model")
    for event in events:
        builder.feed(event)
    return builder.build(stop_reason, stop_sequence, END_USAGE)


def assert_well_formed(wire):
    """The event grammar of the reference §4: sequential, non-overlapping blocks with the right deltas."""
    names = [name for name, _ in wire]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in wire)
    open_block, started = None, 0
    for name, data in wire[1:-2]:
        if name == "content_block_start":
            assert open_block is None and data["index"] == started
            open_block, started = data["content_block"]["type"], started + 1
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == started - 1
            allowed = {
                "text": {"text_delta"},
                "thinking": {"thinking_delta", "signature_delta"},
                "tool_use": {"input_json_delta"},
            }
            assert data["delta"]["type"] in allowed[open_block]
        else:
            assert name == "content_block_stop" and data["index"] == started - 1
            open_block = None
    assert open_block is None


@pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
def test_event_grammar(reply):
    wire, _ = encode(reply)
    assert_well_formed(wire)


def test_message_start_carries_the_empty_message_and_usage():
    wire, _ = encode([])
    assert wire[0] == (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": "local-model",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "stop_details": None,
                "container": None,
                "usage": START_USAGE.to_wire(),
            },
        },
    )


def test_blocks_start_empty_and_thinking_is_signed_just_before_its_stop():
    wire, encoder = encode(REPLIES["thinking, text, tool"], stop_reason="tool_use")
    starts = [data["content_block"] for name, data in wire if name == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "text", "text": ""}
    assert starts[2]["type"] == "tool_use" and starts[2]["input"] == {} and starts[2]["name"] == "get_weather"
    assert re.fullmatch(r"toolu_[a-zA-Z0-9_-]+", starts[2]["id"])
    names = [name for name, _ in wire]
    thinking_stop = names.index("content_block_stop")
    signature = wire[thinking_stop - 1][1]["delta"]
    assert signature == {
        "type": "signature_delta",
        "signature": thinking_signature("User wants Paris weather; call the tool."),
    }
    assert signature["signature"]
    assert encoder.blocks_started == 3 and encoder.has_tool_use


def test_same_kind_pieces_share_a_block_and_empty_text_is_skipped():
    wire, encoder = encode([TextPiece("a"), TextPiece(""), TextPiece("b"), ThinkingPiece("t"), TextPiece("c")])
    deltas = [(data["index"], data["delta"]) for name, data in wire if name == "content_block_delta"]
    assert deltas[:2] == [(0, {"type": "text_delta", "text": "a"}), (0, {"type": "text_delta", "text": "b"})]
    assert deltas[2] == (1, {"type": "thinking_delta", "thinking": "t"})
    assert deltas[4] == (2, {"type": "text_delta", "text": "c"})
    assert encoder.blocks_started == 3 and not encoder.has_tool_use


@pytest.mark.parametrize(
    "arguments",
    [{}, {"a": 1}, {"path": "x" * 500}, {"s": "\\\"\n\t\u0001é😀" * 30}, {"nested": [{"k": list(range(50))}]}],
)
def test_input_json_fragments_concatenate_to_the_arguments(arguments):
    wire, _ = encode([ToolCall("f", arguments)])
    fragments = [data["delta"]["partial_json"] for name, data in wire if name == "content_block_delta"]
    assert fragments and all(len(fragment) <= 64 for fragment in fragments)
    assert "".join(fragments) == json.dumps(arguments, ensure_ascii=False)
    assert json.loads("".join(fragments)) == arguments
    for fragment in fragments[:-1]:
        assert not re.search(r"(?<!\\)(\\\\)*\\(u[0-9a-fA-F]{0,3})?$", fragment), "fragment ends inside an escape"


def test_json_fragments_respect_a_custom_size():
    assert json_fragments({"a": "bcdef"}, max_chars=4) == ['{"a"', ': "b', "cdef", '"}']


def test_finish_closes_the_block_then_reports_cumulative_usage():
    wire, _ = encode([TextPiece("yes")], stop_reason="stop_sequence", stop_sequence="</block>")
    assert wire[-3] == ("content_block_stop", {"type": "content_block_stop", "index": 0})
    assert wire[-2] == (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "stop_sequence", "stop_sequence": "</block>"},
            "usage": END_USAGE.to_wire(),
        },
    )
    assert wire[-1] == ("message_stop", {"type": "message_stop"})


def test_ping_error_and_sse_framing():
    assert StreamEncoder("m", "x").ping() == ("ping", {"type": "ping"})
    assert error_event("overloaded_error", "Overloaded") == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert encode_sse("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert encode_sse("x", {"t": "é\n"}) == 'event: x\ndata: {"t":"é\\n"}\n\n'.encode()


@pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
def test_sdk_accumulates_the_stream_into_the_built_message(reply):
    anthropic = pytest.importorskip("anthropic")
    from anthropic._streaming import SSEDecoder
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import Message, RawMessageStreamEvent
    from pydantic import TypeAdapter

    stop_reason = "tool_use" if any(isinstance(e, ToolCall) for e in reply) else "end_turn"
    wire, _ = encode(reply, stop_reason)
    stream = b"".join(encode_sse(name, data) for name, data in [wire[0], ("ping", {"type": "ping"}), *wire[1:]])
    adapter = TypeAdapter(RawMessageStreamEvent)
    snapshot, json_bufs = None, {}
    for sse in SSEDecoder().iter_bytes(iter([stream])):
        data = json.loads(sse.data)
        assert data["type"] == sse.event
        if sse.event == "ping":
            continue
        event = adapter.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)

    expected = Message.model_validate(build(reply, stop_reason))
    assert anthropic is not None and snapshot is not None
    assert without_tool_ids(snapshot.model_dump()) == without_tool_ids(expected.model_dump())


def without_tool_ids(message: dict) -> dict:
    for block in message["content"]:
        if block["type"] == "tool_use":
            assert re.fullmatch(r"toolu_[a-zA-Z0-9_-]+", block.pop("id"))
        block.pop("parsed_output", None)
    return message
