"""to_openai_chat: the typed request (parsed from Anthropic Messages bodies, as the server parses them) → OpenAI
Chat Completions bodies."""

from __future__ import annotations

import json

import pytest

from mlxclaude.protocol.openai_chat import to_openai_chat
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_create_params

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def convert(*, stream: bool = False, drop: frozenset[str] = frozenset(), **request):
    request.setdefault("model", "claude-sonnet")
    request.setdefault("max_tokens", 1024)
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return to_openai_chat(to_chat_request(parse_create_params(request)), model="qwen3", stream=stream, drop=drop)


def test_minimal_request():
    assert convert() == {"model": "qwen3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1024}


@pytest.mark.parametrize("system, expected", [
    ("Be brief.", "Be brief."),
    ([{"type": "text", "text": "You are Claude Code."},
      {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
     "You are Claude Code.\nBe brief."),
    # Claude Code's attribution block changes every conversation: dropped, like the local engine does
    ([{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=cli;"},
      {"type": "text", "text": "You are Claude Code."}], "You are Claude Code."),
])
def test_system_prompt_is_the_first_message(system, expected):
    messages = convert(system=system)["messages"]
    assert messages[0] == {"role": "system", "content": expected}
    assert messages[1] == {"role": "user", "content": "hi"}


def test_no_system_message_without_a_system_prompt():
    assert [m["role"] for m in convert(system=[])["messages"]] == ["user"]


def test_user_text_blocks_join_into_a_string_and_keep_reminders():
    content = [{"type": "text", "text": "<system-reminder>\nfiles changed\n</system-reminder>"},
               {"type": "text", "text": "fix the bug", "cache_control": {"type": "ephemeral"}}]
    assert convert(messages=[{"role": "user", "content": content}])["messages"] == [
        {"role": "user", "content": "<system-reminder>\nfiles changed\n</system-reminder>\n\nfix the bug"}]


def test_images_make_a_parts_list_in_order():
    content = [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
        {"type": "text", "text": "which is bigger?"},
    ]
    assert convert(messages=[{"role": "user", "content": content}])["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
        {"type": "text", "text": "which is bigger?"},
    ]


def test_text_documents_become_text():
    content = [{"type": "document", "title": "notes.txt",
                "source": {"type": "text", "media_type": "text/plain", "data": "line one"}},
               {"type": "text", "text": "summarise"}]
    assert convert(messages=[{"role": "user", "content": content}])["messages"][0]["content"] == \
        "notes.txt\nline one\n\nsummarise"


def tool_turns(result_content, *, is_error=False, extra=()):
    return [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Lyon"}},
        ]},
        {"role": "user", "content": [
            *extra,
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": result_content, "is_error": is_error},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "9C"}]},
        ]},
    ]


def test_assistant_tool_use_becomes_tool_calls_with_reasoning():
    messages = convert(messages=tool_turns("21C"), tools=[WEATHER])["messages"]
    assert messages[1] == {
        "role": "assistant", "content": "Checking.", "reasoning_content": "Use the tool.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}},
            {"id": "toolu_2", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "Lyon"})}},
        ]}


def test_tool_results_come_before_the_rest_of_their_user_turn():
    extra = [{"type": "text", "text": "also: be quick"}]
    messages = convert(messages=tool_turns([{"type": "text", "text": "21C"}, {"type": "text", "text": "sunny"}],
                                           extra=extra), tools=[WEATHER])["messages"]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "21C\n\nsunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "9C"},
        {"role": "user", "content": "also: be quick"},
    ]


def test_an_error_result_is_prefixed():
    messages = convert(messages=tool_turns("city not found", is_error=True), tools=[WEATHER])["messages"]
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: city not found"}


def test_images_in_tool_results_move_to_the_following_user_message():
    result = [{"type": "text", "text": "screenshot:"},
              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]
    messages = convert(messages=tool_turns(result), tools=[WEATHER])["messages"]
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "screenshot:"}
    assert messages[4] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]}


def test_a_tool_only_assistant_turn_has_null_content():
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "get_weather",
                                                   "input": {}}]}]
    assert convert(messages=messages)["messages"][1]["content"] is None


def test_mid_conversation_system_becomes_a_user_reminder_in_place():
    messages = [{"role": "user", "content": "hi"},
                {"role": "system", "content": "The user switched to plan mode."},
                {"role": "assistant", "content": "ok"}]
    assert convert(messages=messages)["messages"] == [
        {"role": "user", "content": "hi\n\n<system-reminder>\nThe user switched to plan mode.\n</system-reminder>"},
        {"role": "assistant", "content": "ok"},
    ]


def test_consecutive_turns_of_one_role_are_merged():
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert convert(messages=messages)["messages"] == [
        {"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c\n\nd"}]


def test_tools_convert_and_server_tools_are_dropped():
    tools = [WEATHER, {"name": "noop", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
             {"type": "custom", "name": "bare"}]
    assert convert(tools=tools)["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": WEATHER["input_schema"]}},
        {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "bare", "parameters": {"type": "object", "properties": {}}}},
    ]


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice, expected):
    body = convert(tools=[WEATHER], tool_choice=choice)
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


def test_parallel_tool_use_off():
    body = convert(tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False


def test_tool_choice_without_tools_is_not_sent():
    body = convert(tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body


def test_sampling_stops_and_metadata():
    body = convert(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["\n\nHuman:", "END"],
                   metadata={"user_id": "user_abc"})
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 40)
    assert body["stop"] == ["\n\nHuman:", "END"]
    assert body["user"] == "user_abc"


def test_unset_options_are_not_sent():
    body = convert(temperature=None, top_k=None, stop_sequences=[], metadata={"user_id": None})
    assert set(body) == {"model", "messages", "max_tokens"}


@pytest.mark.parametrize("request_part", [
    {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    {"output_format": {"type": "json_schema", "schema": {"type": "object"}}},
])
def test_json_schema_output(request_part):
    assert convert(**request_part)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True}}


@pytest.mark.parametrize("request_part, effort", [
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
    ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "medium"),
    ({"thinking": {"type": "enabled", "budget_tokens": 16383}}, "medium"),
    ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "high"),
    ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}}, "high"),
    ({"output_config": {"effort": "low"}}, "low"),
    ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, None),
    ({"thinking": {"type": "adaptive"}}, None),
])
def test_reasoning_effort(request_part, effort):
    assert convert(max_tokens=32000, **request_part).get("reasoning_effort") == effort


def test_stream_asks_for_usage():
    body = convert(stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_drop_removes_rejected_keys():
    body = convert(max_tokens=4096, top_k=20, thinking={"type": "enabled", "budget_tokens": 2048}, stream=True,
                   drop=frozenset({"top_k", "reasoning_effort", "stream_options", "absent"}))
    assert body == {"model": "qwen3", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4096,
                    "stream": True}


def test_a_final_assistant_turn_is_the_prefill_sent_last():
    messages = [{"role": "user", "content": "write a poem"}, {"role": "assistant", "content": "Roses"}]
    assert convert(messages=messages)["messages"][-1] == {"role": "assistant", "content": "Roses"}
