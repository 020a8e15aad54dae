"""Canonicalisation: what varies between Claude Code requests without meaning never reaches the prompt."""

from __future__ import annotations

import copy
import json

from mlxclaude.protocol.canon import canonical_system_text, drop_billing_header
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_create_params

HEADER = "x-anthropic-billing-header: cc_version=2.1.197.bff; cc_entrypoint=sdk-cli;"


def test_billing_header_blocks_and_lines_are_dropped():
    assert drop_billing_header([HEADER, "You are a Claude agent."]) == ["You are a Claude agent."]
    assert drop_billing_header([f"{HEADER}\nYou are a Claude agent."]) == ["You are a Claude agent."]
    assert drop_billing_header([" " + HEADER, "a", "b"]) == ["a", "b"]
    assert drop_billing_header(["a", "not a header: x-anthropic-billing-header:"]) == \
        ["a", "not a header: x-anthropic-billing-header:"]
    assert canonical_system_text(f"{HEADER}\n\nBe terse.") == "Be terse."
    assert canonical_system_text("Be terse.") == "Be terse."


def body(header_suffix: str, marker_on: str) -> dict:
    mark = {"type": "ephemeral"}
    return {
        "model": "claude-opus-4-8", "max_tokens": 64000, "stream": True,
        "system": [{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.197.{header_suffix}; cc_entrypoint=cli;"},
                   {"type": "text", "text": "You are a Claude agent.", "cache_control": mark}],
        "tools": [{"name": "Bash", "description": "Run", "input_schema":
                   {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                    "required": ["command"]}, **({"cache_control": mark} if marker_on == "tools" else {})}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files",
                                          **({"cache_control": mark} if marker_on == "user" else {})}]},
            {"role": "system", "content": "Available agent types: claude"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "ls it", "signature": "sig"},
                                              {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.txt",
                                          **({"cache_control": mark} if marker_on == "result" else {})}]},
        ],
    }


def test_header_suffix_and_moving_cache_control_do_not_change_the_chat_request():
    chats = [to_chat_request(parse_create_params(body(suffix, marker)))
             for suffix, marker in (("bff", "user"), ("644", "result"), ("d55", "tools"))]
    rendered = [json.dumps([chat.messages, chat.tools]) for chat in chats]
    assert rendered[0] == rendered[1] == rendered[2]
    assert "cache_control" not in rendered[0] and "billing" not in rendered[0]


def test_tool_schemas_keep_the_order_they_were_sent_in():
    original = body("bff", "user")
    reordered = copy.deepcopy(original)
    props = reordered["tools"][0]["input_schema"]["properties"]
    reordered["tools"][0]["input_schema"]["properties"] = dict(reversed(list(props.items())))
    first = to_chat_request(parse_create_params(original)).tools[0]["function"]["parameters"]["properties"]
    second = to_chat_request(parse_create_params(reordered)).tools[0]["function"]["parameters"]["properties"]
    assert list(first) == ["command", "timeout"] and list(second) == ["timeout", "command"]  # as sent, not sorted


def test_a_mid_conversation_system_message_stays_in_place_as_the_conversation_grows():
    turn = body("bff", "user")
    first = to_chat_request(parse_create_params({**turn, "messages": turn["messages"][:2]}))
    grown = to_chat_request(parse_create_params(turn))
    assert grown.messages[:len(first.messages)] == first.messages
    assert "Available agent types" in first.messages[1]["content"] and first.messages[1]["role"] == "user"
    assert grown.messages[2]["reasoning_content"] == "ls it"


def test_the_wire_system_loses_the_billing_header_and_keeps_the_rest():
    from mlxclaude.protocol.canon import canonical_wire_system

    header = "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;"
    blocks = [{"type": "text", "text": header},
              {"type": "text", "text": f"{header}\nYou are Claude Code.", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "Be terse."}]
    assert canonical_wire_system(blocks) == [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be terse."}]
    assert canonical_wire_system(f"{header}\nBe terse.") == "Be terse."
    assert canonical_wire_system("Be terse.") == "Be terse."
