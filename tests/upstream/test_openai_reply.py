"""from_openai_completion, OpenAIStreamReader and checked_call: OpenAI replies → parsing events."""

from __future__ import annotations

import json

import pytest

from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.usage import Usage
from mlxclaude.upstream.openai_wire import (
    OpenAIStreamReader,
    ReplyEnd,
    TextPiece,
    ThinkingPiece,
    ToolCall,
    checked_call,
    from_openai_completion,
)

TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "Read", "input_schema": {"type": "object", "properties": {
        "file_path": {"type": "string"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}}},
    {"type": "web_search_20250305", "name": "web_search"},
]


def completion(message, finish_reason="stop", usage=None, **choice):
    """A non-streaming body as vLLM returns it."""
    return {
        "id": "chatcmpl-9f2c", "object": "chat.completion", "created": 1767225600, "model": "qwen3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [], **message},
                     "logprobs": None, "finish_reason": finish_reason, **choice}],
        "usage": usage or {"prompt_tokens": 120, "total_tokens": 130, "completion_tokens": 10,
                           "prompt_tokens_details": None},
    }


def call(name, arguments, call_id="chatcmpl-tool-1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- checked_call ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, arguments, expected", [
    ("get_weather", '{"city": "Paris"}', ToolCall("get_weather", {"city": "Paris"})),
    ("get_weather", "", ToolCall("get_weather", {})),
    ("get_weather", None, ToolCall("get_weather", {})),
    ("get_weather", {"city": "Paris"}, ToolCall("get_weather", {"city": "Paris"})),
    # repairable: cut short, single quotes, fenced, trailing garbage, encoded twice
    ("get_weather", '{"city": "Paris"', ToolCall("get_weather", {"city": "Paris"})),
    ("get_weather", "{'city': 'Paris'}", ToolCall("get_weather", {"city": "Paris"})),
    ("get_weather", '```json\n{"city": "Paris"}\n```', ToolCall("get_weather", {"city": "Paris"})),
    ("get_weather", '{"city": "Paris"}</tool_call>', ToolCall("get_weather", {"city": "Paris"})),
    ("get_weather", json.dumps('{"city": "Paris"}'), ToolCall("get_weather", {"city": "Paris"})),
    # coerced to the schema
    ("Read", '{"file_path": "/a.py", "limit": "5", "offset": 10}',
     ToolCall("Read", {"file_path": "/a.py", "limit": 5, "offset": 10})),
    # declared names: a functions. prefix or another case still finds the tool
    ("functions.get_weather", '{"city": "Oslo"}', ToolCall("get_weather", {"city": "Oslo"})),
    ("READ", '{"file_path": "/a"}', ToolCall("Read", {"file_path": "/a"})),
    # never a broken tool_use
    ("nope", '{"a": 1}', TextPiece('{"name": "nope", "arguments": {"a": 1}}')),
    ("web_search", '{"query": "x"}', TextPiece('{"name": "web_search", "arguments": {"query": "x"}}')),
    ("get_weather", '[1, 2]', TextPiece('{"name": "get_weather", "arguments": [1, 2]}')),
    ("get_weather", '{"city": "Par', TextPiece('{"name": "get_weather", "arguments": {"city": "Par}')),
])
def test_checked_call(name, arguments, expected):
    assert checked_call(name, arguments, TOOLS) == expected


def test_checked_call_without_tools_gives_text():
    assert checked_call("get_weather", "{}", []) == TextPiece('{"name": "get_weather", "arguments": {}}')


# --- non-streaming ---------------------------------------------------------------------------------------------


def test_text_reply():
    events, end = from_openai_completion(completion({"content": "Hello!"}), tools=[])
    assert events == [TextPiece("Hello!")]
    assert end == ReplyEnd("end_turn", None, Usage(input_tokens=120, output_tokens=10))


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_comes_first(key):
    events, _ = from_openai_completion(completion({key: "Think.", "content": "Answer."}), tools=[])
    assert events == [ThinkingPiece("Think."), TextPiece("Answer.")]


def test_tool_calls_reply():
    message = {"content": "Let me check.", "reasoning_content": "Need weather.",
               "tool_calls": [call("get_weather", '{"city": "Paris"}'),
                              call("Read", '{"file_path": "/x", "limit": "20"', "chatcmpl-tool-2")]}
    events, end = from_openai_completion(completion(message, "tool_calls"), tools=TOOLS)
    assert events == [ThinkingPiece("Need weather."), TextPiece("Let me check."),
                      ToolCall("get_weather", {"city": "Paris"}), ToolCall("Read", {"file_path": "/x", "limit": 20})]
    assert end.stop_reason == "tool_use"


def test_whitespace_before_tool_calls_is_dropped():
    message = {"content": "\n\n", "tool_calls": [call("get_weather", "{}")]}
    events, _ = from_openai_completion(completion(message, "tool_calls"), tools=TOOLS)
    assert events == [ToolCall("get_weather", {})]


def test_unknown_tool_becomes_text_and_the_turn_ends_normally():
    message = {"tool_calls": [call("delete_everything", '{"now": true}')]}
    events, end = from_openai_completion(completion(message, "tool_calls"), tools=TOOLS)
    assert events == [TextPiece('{"name": "delete_everything", "arguments": {"now": true}}')]
    assert end.stop_reason == "end_turn"


def test_a_surviving_call_makes_tool_use_whatever_the_finish_reason():
    message = {"tool_calls": [call("get_weather", '{"city": "Paris"')]}
    _, end = from_openai_completion(completion(message, "length"), tools=TOOLS)
    assert end.stop_reason == "tool_use"


@pytest.mark.parametrize("finish_reason, stop_reason_field, expected", [
    ("stop", None, ("end_turn", None)),
    ("stop", "END", ("stop_sequence", "END")),      # vLLM names the matched stop string
    ("stop", 151645, ("end_turn", None)),           # ... or the stop token id
    ("length", None, ("max_tokens", None)),
    ("content_filter", None, ("end_turn", None)),
    ("tool_calls", None, ("end_turn", None)),       # no call survived
    (None, None, ("end_turn", None)),
])
def test_finish_reasons(finish_reason, stop_reason_field, expected):
    body = completion({"content": "x"}, finish_reason, stop_reason=stop_reason_field)
    _, end = from_openai_completion(body, tools=[], stop_sequences=("END",))
    assert (end.stop_reason, end.stop_sequence) == expected


@pytest.mark.parametrize("usage, expected", [
    ({"prompt_tokens": 2095, "completion_tokens": 87, "total_tokens": 2182,
      "prompt_tokens_details": {"cached_tokens": 1800}},
     Usage(input_tokens=295, output_tokens=87, cache_read_input_tokens=1800)),
    ({"prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": {}}, Usage(50, 5)),
    ({"prompt_tokens": 50, "completion_tokens": 5, "prompt_cache_hit_tokens": 30},
     Usage(input_tokens=20, output_tokens=5, cache_read_input_tokens=30)),
])
def test_usage(usage, expected):
    _, end = from_openai_completion(completion({"content": "x"}, usage=usage), tools=[])
    assert end.usage == expected


def test_a_body_without_choices_or_usage():
    events, end = from_openai_completion({"id": "x", "choices": []}, tools=[])
    assert events == [] and end == ReplyEnd("end_turn", None, Usage())


def test_an_error_body_raises():
    with pytest.raises(ApiError) as caught:
        from_openai_completion({"error": {"message": "boom", "type": "server_error", "code": 500}}, tools=[])
    assert caught.value.status == 500


# --- streaming -------------------------------------------------------------------------------------------------


def chunk(delta=None, finish_reason=None, **extra):
    """A streamed chunk as vLLM/OpenAI send it."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish_reason, **extra}]
    return {"id": "chatcmpl-9f2c", "object": "chat.completion.chunk", "created": 1767225600,
            "model": "qwen3", "choices": choices}


def usage_chunk(prompt=120, completion_tokens=10, cached=0):
    body = chunk()
    body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                     "total_tokens": prompt + completion_tokens, "prompt_tokens_details": {"cached_tokens": cached}}
    return body


def tool_delta(index, name=None, arguments="", call_id=None):
    item = {"index": index, "function": {"arguments": arguments}}
    if name is not None:
        item.update(id=call_id or f"call_{index}", type="function")
        item["function"]["name"] = name
    return {"tool_calls": [item]}


def run(chunks, tools=TOOLS, stop_sequences=()):
    reader = OpenAIStreamReader(tools=tools, stop_sequences=stop_sequences)
    emitted = []
    for piece in chunks:
        emitted.append(reader.feed(piece))
    tail, end = reader.finish()
    return emitted, tail, end


def test_stream_reasoning_then_content():
    chunks = [chunk({"role": "assistant", "content": ""}),
              chunk({"reasoning_content": "Let me"}), chunk({"reasoning_content": " think."}),
              chunk({"content": "Hi"}), chunk({"content": " there"}),
              chunk({}, "stop"), usage_chunk(30, 4, cached=16)]
    emitted, tail, end = run(chunks)
    assert emitted == [[], [ThinkingPiece("Let me")], [ThinkingPiece(" think.")],
                       [TextPiece("Hi")], [TextPiece(" there")], [], []]
    assert tail == []
    assert end == ReplyEnd("end_turn", None, Usage(input_tokens=14, output_tokens=4, cache_read_input_tokens=16))


def test_stream_reasoning_under_its_newer_name():
    emitted, _, _ = run([chunk({"reasoning": "hmm"}), chunk({"content": "ok"})])
    assert emitted == [[ThinkingPiece("hmm")], [TextPiece("ok")]]


def test_stream_tool_call_arguments_over_many_chunks():
    arguments = json.dumps({"file_path": "/src/app.py", "limit": "50"})
    pieces = [arguments[i:i + 4] for i in range(0, len(arguments), 4)]
    chunks = [chunk({"role": "assistant", "content": "Reading."}),
              chunk(tool_delta(0, "Read", "", "chatcmpl-tool-7f"))]
    chunks += [chunk(tool_delta(0, arguments=piece)) for piece in pieces]
    chunks += [chunk({}, "tool_calls"), usage_chunk()]
    emitted, tail, end = run(chunks)
    flat = [event for events in emitted for event in events]
    assert flat == [TextPiece("Reading."), ToolCall("Read", {"file_path": "/src/app.py", "limit": 50})]
    assert emitted[-2] == [ToolCall("Read", {"file_path": "/src/app.py", "limit": 50})]  # at finish_reason
    assert tail == [] and end.stop_reason == "tool_use"


def test_stream_a_call_comes_out_when_the_next_index_starts():
    emitted, tail, end = run([chunk(tool_delta(0, "get_weather", '{"city": "Paris"}')),
                              chunk(tool_delta(1, "get_weather", '{"city": ')),
                              chunk(tool_delta(1, arguments='"Lyon"}'))])
    assert emitted == [[], [ToolCall("get_weather", {"city": "Paris"})], []]
    assert tail == [ToolCall("get_weather", {"city": "Lyon"})]
    assert end.stop_reason == "tool_use"


def test_stream_two_parallel_calls_interleaved_by_index():
    first, second = json.dumps({"city": "Paris"}), json.dumps({"file_path": "/a", "offset": "3"})
    chunks = [chunk(tool_delta(0, "get_weather", first[:5])),
              chunk(tool_delta(1, "Read", second[:7])),
              chunk(tool_delta(0, arguments=first[5:11])),
              chunk(tool_delta(1, arguments=second[7:])),
              chunk(tool_delta(0, arguments=first[11:])),
              chunk({}, "tool_calls"), usage_chunk()]
    emitted, tail, end = run(chunks)
    assert [event for events in emitted for event in events] + tail == [
        ToolCall("get_weather", {"city": "Paris"}), ToolCall("Read", {"file_path": "/a", "offset": 3})]
    assert end.stop_reason == "tool_use"


def test_stream_several_calls_in_one_chunk():
    delta = {"tool_calls": [
        {"index": 0, "id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"A"}'}},
        {"index": 1, "id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"B"}'}},
    ]}
    emitted, tail, _ = run([chunk(delta, "tool_calls")])
    assert emitted == [[ToolCall("get_weather", {"city": "A"}), ToolCall("get_weather", {"city": "B"})]]


def test_stream_calls_without_index_are_told_apart_by_id():
    chunks = [chunk({"tool_calls": [{"id": "a", "function": {"name": "get_weather", "arguments": '{"city"'}}]}),
              chunk({"tool_calls": [{"function": {"arguments": ': "A"}'}}]}),
              chunk({"tool_calls": [{"id": "b", "function": {"name": "get_weather", "arguments": "{}"}}]})]
    emitted, tail, _ = run(chunks)
    assert [event for events in emitted for event in events] + tail == [
        ToolCall("get_weather", {"city": "A"}), ToolCall("get_weather", {})]


def test_stream_text_after_tool_calls_is_dropped():
    chunks = [chunk({"content": "Sure."}), chunk({"content": "\n\n"}),
              chunk(tool_delta(0, "get_weather", '{"city": "Paris"}')),
              chunk({"content": "I called the tool!"}), chunk({"reasoning_content": "late"}),
              chunk({}, "tool_calls")]
    emitted, tail, end = run(chunks)
    assert [event for events in emitted for event in events] + tail == [
        TextPiece("Sure."), ToolCall("get_weather", {"city": "Paris"})]


def test_stream_whitespace_is_held_until_more_text():
    emitted, tail, _ = run([chunk({"content": "a"}), chunk({"content": " "}), chunk({"content": "b"}),
                            chunk({"content": "\n"})])
    assert emitted == [[TextPiece("a")], [], [TextPiece(" b")], []]
    assert tail == [TextPiece("\n")]


def test_stream_unknown_tool_becomes_text():
    emitted, tail, end = run([chunk(tool_delta(0, "shell", '{"cmd": "ls"}')), chunk({}, "tool_calls")])
    assert emitted[-1] == [TextPiece('{"name": "shell", "arguments": {"cmd": "ls"}}')]
    assert end.stop_reason == "end_turn"


def test_stream_calls_left_open_come_out_at_finish():
    emitted, tail, end = run([chunk(tool_delta(0, "get_weather", '{"city": "Paris"'))])
    assert tail == [ToolCall("get_weather", {"city": "Paris"})]
    assert end.stop_reason == "tool_use" and end.usage == Usage()


@pytest.mark.parametrize("finish_reason, extra, expected", [
    ("length", {}, ("max_tokens", None)),
    ("stop", {"stop_reason": "END"}, ("stop_sequence", "END")),
    ("stop", {"stop_reason": None}, ("end_turn", None)),
])
def test_stream_finish_reasons(finish_reason, extra, expected):
    _, _, end = run([chunk({"content": "x"}), chunk({}, finish_reason, **extra)], stop_sequences=("END",))
    assert (end.stop_reason, end.stop_sequence) == expected


def test_stream_usage_only_in_the_last_chunk():
    reader = OpenAIStreamReader(tools=[])
    reader.feed(chunk({"content": "x"}, "stop"))
    assert reader.feed(usage_chunk(1000, 20, cached=900)) == []
    _, end = reader.finish()
    assert end.usage == Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=900)


@pytest.mark.parametrize("error_chunk, status, error_type", [
    ({"error": {"object": "error", "message": "This model's maximum context length is 8192 tokens. However, "
                "your request has 9000 input tokens. Please reduce the length of the input messages.",
                "type": "BadRequestError", "param": None, "code": 400}}, 400, "invalid_request_error"),
    ({"error": {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}}, 500, "api_error"),
    ({"object": "error", "message": "engine dead", "type": "EngineDeadError", "code": 503}, 529, "overloaded_error"),
    ({"error": {"message": "rate limited", "type": "requests", "code": "rate_limit_exceeded"}},
     429, "rate_limit_error"),
    ({"error": {"message": "something odd", "type": "server_error", "code": None}}, 500, "api_error"),
])
def test_stream_error_chunk_raises(error_chunk, status, error_type):
    reader = OpenAIStreamReader(tools=[])
    reader.feed(chunk({"content": "partial"}))
    with pytest.raises(ApiError) as caught:
        reader.feed(error_chunk)
    assert (caught.value.status, caught.value.error_type) == (status, error_type)


def test_stream_context_overflow_chunk_keeps_the_wording():
    reader = OpenAIStreamReader(tools=[])
    with pytest.raises(ApiError) as caught:
        reader.feed({"error": {"message": "This model's maximum context length is 8192 tokens. However, your "
                               "request has 9000 input tokens.", "type": "BadRequestError", "code": 400}})
    assert caught.value.message == "prompt is too long: 9000 tokens > 8192 maximum"
