from typing import Any

import pytest

from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.wire import (
    DocumentBlockParam,
    ImageBlockParam,
    MessageCountTokensParams,
    MessageCreateParams,
    MidConversationSystemBlockParam,
    RedactedThinkingBlockParam,
    SearchResultBlockParam,
    TextBlockParam,
    ThinkingBlockParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    UnknownBlockParam,
    parse_count_tokens_params,
    parse_create_params,
)


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **overrides}


def user_blocks(*blocks: dict[str, Any]) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": list(blocks)}])


def test_minimal_body() -> None:
    params = parse_create_params(body())
    assert isinstance(params, MessageCreateParams)
    assert (params.model, params.max_tokens, params.messages[0].role, params.messages[0].content) == (
        "m",
        16,
        "user",
        "hi",
    )
    assert params.stream is None and params.system is None and params.tools is None


@pytest.mark.parametrize(
    ("block", "expected_class"),
    [
        (
            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h", "scope": "x"}},
            TextBlockParam,
        ),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}, ImageBlockParam),
        ({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, ImageBlockParam),
        ({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}, DocumentBlockParam),
        (
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "d"}]}},
            DocumentBlockParam,
        ),
        (
            {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "c"}]},
            SearchResultBlockParam,
        ),
        ({"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}, ToolUseBlockParam),
        ({"type": "tool_result", "tool_use_id": "toolu_1"}, ToolResultBlockParam),
        ({"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": False}, ToolResultBlockParam),
        (
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_reference", "tool_name": "X"}]},
            ToolResultBlockParam,
        ),
        ({"type": "thinking", "thinking": "hmm", "signature": ""}, ThinkingBlockParam),
        ({"type": "thinking", "thinking": "hmm"}, ThinkingBlockParam),
        ({"type": "redacted_thinking", "data": "opaque"}, RedactedThinkingBlockParam),
        ({"type": "mid_conv_system", "content": [{"type": "text", "text": "s"}]}, MidConversationSystemBlockParam),
        ({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}, UnknownBlockParam),
        ({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}, UnknownBlockParam),
        ({"type": "something_from_2027", "payload": [1, 2, {"deep": None}]}, UnknownBlockParam),
    ],
)
def test_block_types(block: dict[str, Any], expected_class: type) -> None:
    content = parse_create_params(user_blocks(block)).messages[0].content
    assert isinstance(content, list)
    assert type(content[0]) is expected_class


def test_unknown_block_keeps_its_fields() -> None:
    block = parse_create_params(user_blocks({"type": "future", "x": 1})).messages[0].content[0]
    assert isinstance(block, UnknownBlockParam)
    assert (block.type, block.model_extra) == ("future", {"x": 1})


@pytest.mark.parametrize(
    "overrides",
    [
        {"unknown_top_level": {"anything": True}, "cache_control": {"type": "ephemeral"}},
        {"metadata": {"user_id": '{"device_id":"abc","account_uuid":"","session_id":"9bb5"}'}},
        {"metadata": {"user_id": None}},
        {"system": "You are helpful."},
        {
            "system": [
                {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "b"},
            ]
        },
        {"stream": True, "temperature": 1, "top_p": 0.9, "top_k": 40, "stop_sequences": ["</block>"]},
        {"thinking": {"type": "adaptive"}},
        {"thinking": {"type": "adaptive", "display": "omitted"}},
        {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096},
        {"thinking": {"type": "disabled"}},
        {"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
        {"output_config": {"effort": "high"}},
        {"output_config": {"effort": "xhigh", "format": {"type": "json_schema", "schema": {"type": "object"}}}},
        {"output_format": {"type": "json_schema", "schema": {"type": "object"}}},
        {"service_tier": "auto", "container": {"id": "c"}, "mcp_servers": [], "speed": "fast", "inference_geo": "us"},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        {"tool_choice": {"type": "tool", "name": "Bash"}, "tools": [{"name": "Bash", "input_schema": {}}]},
        {"tool_choice": {"type": "none"}},
        {
            "tools": [
                {
                    "name": "Bash",
                    "input_schema": {"type": "object"},
                    "cache_control": {"type": "ephemeral"},
                    "strict": True,
                },
                {"name": "Custom", "type": "custom", "description": "d", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
                {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "reminder"},
                        {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "X"}},
                        {"type": "tool_removal", "tool": {"type": "tool_reference", "name": "Y"}},
                    ],
                },
            ]
        },
    ],
)
def test_tolerant_bodies_parse(overrides: dict[str, Any]) -> None:
    parse_create_params(body(**overrides))


def test_tool_kinds() -> None:
    tools = parse_create_params(
        body(tools=[{"name": "Bash", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}])
    ).tools
    assert [(tool.name, tool.is_custom) for tool in tools] == [("Bash", True), ("web_search", False)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_tokens": 1, "messages": []}, "model: Field required"),
        ({"model": "m", "messages": []}, "max_tokens: Field required"),
        (body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (body(messages=[{"role": "user", "content": None}]), "messages.0.content: Input should be a valid list"),
        (
            body(messages=[{"role": "bot", "content": "x"}]),
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (user_blocks({"type": "text"}), "messages.0.content.0.text.text: Field required"),
        (
            user_blocks({"text": "no type"}),
            "messages.0.content.0: Input should be a content block object with a string `type`",
        ),
        (
            user_blocks("bare string"),
            "messages.0.content.0: Input should be a content block object with a string `type`",
        ),
        (
            user_blocks({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}),
            "messages.0.content.0.tool_result.content.0.text.text: Field required",
        ),
        (user_blocks({"type": "tool_use", "name": "x"}), "messages.0.content.0.tool_use.id: Field required"),
        (body(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"),
        (
            body(tool_choice={"type": "tool"}),
            "tool_choice: Value error, `name` is required when tool_choice.type is 'tool'",
        ),
        (body(tool_choice={"type": "required"}), "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"),
        (body(tools=[{"input_schema": {}}]), "tools.0.name: Field required"),
        (body(output_config={"format": {"type": "json_schema"}}), "output_config.format.schema: Field required"),
        ([], "Input should be a valid dictionary or instance of MessageCreateParams"),
    ],
)
def test_invalid_bodies_raise_readable_400(data: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_create_params(data)
    assert (caught.value.status, caught.value.error_type, caught.value.message) == (
        400,
        "invalid_request_error",
        message,
    )


def test_json_output_format_prefers_output_config() -> None:
    params = parse_create_params(
        body(
            output_config={"format": {"type": "json_schema", "schema": {"title": "new"}}},
            output_format={"type": "json_schema", "schema": {"title": "old"}},
        )
    )
    assert params.json_output_format.json_schema == {"title": "new"}
    legacy = parse_create_params(body(output_format={"type": "json_schema", "schema": {"title": "old"}}))
    assert legacy.json_output_format.json_schema == {"title": "old"}
    assert parse_create_params(body(output_config={"effort": "low"})).json_output_format is None


def test_count_tokens_ignores_generation_fields() -> None:
    params = parse_count_tokens_params(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True, "metadata": {}}
    )
    assert isinstance(params, MessageCountTokensParams)
    assert not hasattr(params, "max_tokens")


def test_count_tokens_does_not_need_max_tokens() -> None:
    parse_count_tokens_params({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def test_count_tokens_invalid_raises_400() -> None:
    with pytest.raises(ApiError) as caught:
        parse_count_tokens_params({"model": "m"})
    assert (caught.value.status, caught.value.message) == (400, "messages: Field required")
