import json
from typing import Any

import pytest

from mlxclaude.protocol.chat import ChatRequest, Sampling, ToolChoice, WebSearchTool
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_count_tokens_params, parse_create_params

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;"
BASH_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}

CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-opus-4-8",
    "max_tokens": 64000,
    "stream": True,
    "temperature": 1,
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": json.dumps({"device_id": "d1", "account_uuid": "", "session_id": "s1"})},
    "system": [
        {"type": "text", "text": BILLING},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be concise.", "cache_control": {"type": "ephemeral", "scope": "global"}},
    ],
    "tools": [
        {"name": "Bash", "description": "Run a command", "input_schema": BASH_SCHEMA},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"name": "mcp__github__get_issue", "input_schema": {"type": "object", "properties": {}}, "strict": True},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "list files"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                {"type": "text", "text": "and explain", "cache_control": {"type": "ephemeral"}},
            ],
        },
        {"role": "system", "content": "Available agent types: general-purpose"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "bG9jYWw="},
                {"type": "text", "text": "Listing."},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls -la"}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "false"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "a.txt\nb.txt",
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": [{"type": "text", "text": "exit 1"}],
                    "is_error": True,
                },
                {"type": "brand_new_block", "data": 1},
            ],
        },
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "TodoWrite list is empty"},
                {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "X"}},
            ],
        },
    ],
}

CLAUDE_CODE_MESSAGES = [
    {"role": "system", "content": "You are Claude Code.\nBe concise."},
    {
        "role": "user",
        "content": [  # the image kept in its place: the typed request is lossless
            {"type": "text", "text": "list files"},
            {"type": "image", "media_type": "image/png", "data": "AA=="},
            {"type": "text", "text": "and explain\n\n"
                                     "<system-reminder>\nAvailable agent types: general-purpose\n</system-reminder>"},
        ],
    },
    {
        "role": "assistant",
        "content": "Listing.\n\n[searched the web for: q]",  # the server's earlier search, as text
        "reasoning_content": "I should run ls.",
        "tool_calls": [
            {"type": "function", "id": "toolu_01", "function": {"name": "Bash", "arguments": {"command": "ls -la"}}},
            {"type": "function", "id": "toolu_02", "function": {"name": "Bash", "arguments": {"command": "false"}}},
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_01", "name": "Bash", "content": "a.txt\nb.txt"},
    {"role": "tool", "tool_call_id": "toolu_02", "name": "Bash", "content": "Error: exit 1"},
    {"role": "user", "content": "<system-reminder>\nTodoWrite list is empty\n</system-reminder>"},
]


def test_claude_code_request() -> None:
    request = to_chat_request(parse_create_params(CLAUDE_CODE_BODY), session_id="s1")
    assert request == ChatRequest(
        model="claude-opus-4-8",
        messages=CLAUDE_CODE_MESSAGES,
        tools=[
            {
                "type": "function",
                "function": {"name": "Bash", "description": "Run a command", "parameters": BASH_SCHEMA},
            },
            {
                "type": "function",
                "function": {
                    "name": "mcp__github__get_issue",
                    "description": "",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        tool_choice=ToolChoice(),
        web_search=WebSearchTool(max_uses=5),
        thinking="default",
        max_tokens=64000,
        stop_sequences=(),
        sampling=Sampling(temperature=1.0),  # Claude Code sends it
        stream=True,
        has_images=True,
        effort="high",
        user_id=json.dumps({"device_id": "d1", "account_uuid": "", "session_id": "s1"}),
        json_schema=None,
        assistant_prefill="",
        session_id="s1",
        kind="main",
    )


def convert(messages: list[dict[str, Any]], **overrides: Any) -> ChatRequest:
    return to_chat_request(parse_create_params({"model": "m", "max_tokens": 8, "messages": messages, **overrides}))


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def system(content: Any) -> dict[str, Any]:
    return {"role": "system", "content": content}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str = "Bash", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments or {}}


def tool_result(call_id: str, content: Any = None, **extra: Any) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": call_id, **extra}
    if content is not None:
        block["content"] = content
    return block


def call(call_id: str, name: str = "Bash", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "function", "id": call_id, "function": {"name": name, "arguments": arguments or {}}}


IMAGE = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
REMINDER = "<system-reminder>\nnote\n</system-reminder>"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param([user("hi")], [{"role": "user", "content": "hi"}], id="string-content"),
        pytest.param([user([text("a"), text("b")])], [{"role": "user", "content": "a\n\nb"}], id="text-blocks-joined"),
        pytest.param([user("a"), user([text("b")])], [{"role": "user", "content": "a\n\nb"}], id="user-turns-merged"),
        pytest.param(
            [user("q"), assistant("x"), assistant([text("y")]), user("r")],
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "x\n\ny"},
                {"role": "user", "content": "r"},
            ],
            id="assistant-turns-merged",
        ),
        pytest.param(
            [
                user("q"),
                assistant(
                    [
                        {"type": "thinking", "thinking": "t1"},
                        text("a"),
                        {"type": "thinking", "thinking": "t2", "signature": ""},
                    ]
                ),
                user("r"),
            ],
            [user("q"), {"role": "assistant", "content": "a", "reasoning_content": "t1\n\nt2"}, user("r")],
            id="thinking-to-reasoning-content",
        ),
        pytest.param(
            [
                user("q"),
                assistant([{"type": "redacted_thinking", "data": "x"}, {"type": "mystery"}, text("a")]),
                user("r"),
            ],
            [user("q"), {"role": "assistant", "content": "a"}, user("r")],
            id="redacted-and-unknown-dropped",
        ),
        pytest.param(
            [
                user("q"),
                assistant([tool_use("t1", "Read", {"path": "x"})]),
                user([text("after"), tool_result("t1", "body")]),
            ],
            [
                user("q"),
                {"role": "assistant", "content": "", "tool_calls": [call("t1", "Read", {"path": "x"})]},
                {"role": "tool", "tool_call_id": "t1", "name": "Read", "content": "body"},
                user("after"),
            ],
            id="tool-results-before-user-text",
        ),
        pytest.param(
            [
                user("q"),
                assistant([tool_use("t1"), tool_use("t2")]),
                user([tool_result("t1"), tool_result("t2", [text("x"), text("y")], is_error=True)]),
            ],
            [
                user("q"),
                {"role": "assistant", "content": "", "tool_calls": [call("t1"), call("t2")]},
                {"role": "tool", "tool_call_id": "t1", "name": "Bash", "content": ""},
                {"role": "tool", "tool_call_id": "t2", "name": "Bash", "content": "Error: x\n\ny"},
            ],
            id="tool-messages-never-merged",
        ),
        pytest.param(
            [user([tool_result("unknown_id", "r")])],
            [{"role": "tool", "tool_call_id": "unknown_id", "content": "r"}],
            id="tool-result-without-matching-call-has-no-name",
        ),
        pytest.param(
            [user("q"), system("note"), assistant("a"), user("r")],
            [user("q\n\n" + REMINDER), {"role": "assistant", "content": "a"}, user("r")],
            id="system-folded-into-preceding-user",
        ),
        pytest.param(
            [user("q"), system("one"), system([text("two"), {"type": "tool_removal", "tool": {"name": "X"}}])],
            [user("q\n\n<system-reminder>\none\n</system-reminder>\n\n<system-reminder>\ntwo\n</system-reminder>")],
            id="consecutive-system-messages",
        ),
        pytest.param(
            [user("q"), system("<system-reminder>already wrapped</system-reminder>")],
            [user("q\n\n<system-reminder>already wrapped</system-reminder>")],
            id="already-wrapped-not-wrapped-again",
        ),
        pytest.param(
            [user("q"), assistant([tool_use("t1")]), user([tool_result("t1", "ok")]), system("note")],
            [
                user("q"),
                {"role": "assistant", "content": "", "tool_calls": [call("t1")]},
                {"role": "tool", "tool_call_id": "t1", "name": "Bash", "content": "ok"},
                user(REMINDER),
            ],
            id="system-after-tool-results",
        ),
        pytest.param(
            [user("q"), assistant([tool_use("t1")]), system("note"), user([tool_result("t1", "ok"), text("more")])],
            [
                user("q"),
                {"role": "assistant", "content": "", "tool_calls": [call("t1")]},
                {"role": "tool", "tool_call_id": "t1", "name": "Bash", "content": "ok"},
                user(REMINDER + "\n\nmore"),
            ],
            id="system-between-call-and-result-waits-for-tool-messages",
        ),
        pytest.param(
            [user([text("q"), {"type": "mid_conv_system", "content": [text("note")]}])],
            [user("q\n\n" + REMINDER)],
            id="mid-conv-system-block",
        ),
        pytest.param([system(""), user("q")], [user("q")], id="empty-system-message-dropped"),
        pytest.param(
            [
                user(
                    [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "body"},
                            "title": "T",
                        }
                    ]
                )
            ],
            [user("T\nbody")],
            id="text-document-flattened",
        ),
        pytest.param(
            [user([{"type": "document", "source": {"type": "content", "content": [text("c1"), text("c2")]}}])],
            [user("c1\n\nc2")],
            id="content-document-flattened",
        ),
        pytest.param(
            [
                user(
                    [
                        text("see"),
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        },
                    ]
                )
            ],
            [user("see")],
            id="pdf-document-dropped",
        ),
        pytest.param(
            [user([{"type": "search_result", "source": "https://s", "title": "T", "content": [text("c")]}])],
            [user("T\nhttps://s\nc")],
            id="search-result-flattened",
        ),
    ],
)
def test_messages(messages: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert convert(messages).messages == expected


@pytest.mark.parametrize(
    ("messages", "expected_messages", "prefill"),
    [
        ([user("q"), assistant("{")], [user("q")], "{"),
        ([user("q"), assistant([text("The answer"), text("is")])], [user("q")], "The answer\n\nis"),
        ([user("q"), assistant("a"), user("r")], [user("q"), {"role": "assistant", "content": "a"}, user("r")], ""),
    ],
)
def test_final_assistant_is_prefill(messages: list, expected_messages: list, prefill: str) -> None:
    request = convert(messages)
    assert (request.messages, request.assistant_prefill) == (expected_messages, prefill)


@pytest.mark.parametrize(
    ("messages", "has_images"),
    [
        ([user("q")], False),
        ([user([IMAGE, text("q")])], True),
        ([user([tool_result("t", [text("shot"), IMAGE])])], True),
        ([user([{"type": "document", "source": {"type": "content", "content": [IMAGE]}}])], True),
    ],
)
def test_has_images(messages: list, has_images: bool) -> None:
    assert convert(messages).has_images is has_images


@pytest.mark.parametrize(
    ("system_prompt", "expected"),
    [
        ("plain", [{"role": "system", "content": "plain"}, user("q")]),
        ("", [user("q")]),
        ([text(BILLING)], [user("q")]),
        ([text(BILLING), text("a"), text("b")], [{"role": "system", "content": "a\nb"}, user("q")]),
    ],
)
def test_system_prompt(system_prompt: Any, expected: list) -> None:
    assert convert([user("q")], system=system_prompt).messages == expected


@pytest.mark.parametrize(
    ("thinking", "mode"),
    [
        (None, "default"),
        ({"type": "adaptive"}, "default"),
        ({"type": "enabled", "budget_tokens": 1024}, "enabled"),
        ({"type": "disabled"}, "disabled"),
        ({"type": "from_the_future"}, "default"),
    ],
)
def test_thinking_mode(thinking: Any, mode: str) -> None:
    overrides = {} if thinking is None else {"thinking": thinking, "max_tokens": 2048}
    assert convert([user("q")], **overrides).thinking == mode


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, ToolChoice()),
        ({"type": "auto"}, ToolChoice("auto")),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("any", None, True)),
        ({"type": "tool", "name": "Bash"}, ToolChoice("tool", "Bash", False)),
        ({"type": "none"}, ToolChoice("none")),
    ],
)
def test_tool_choice(tool_choice: Any, expected: ToolChoice) -> None:
    overrides = {"tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}
    if tool_choice is not None:
        overrides["tool_choice"] = tool_choice
    assert convert([user("q")], **overrides).tool_choice == expected


@pytest.mark.parametrize(
    ("overrides", "sampling"),
    [
        ({}, Sampling(None, None, None)),  # not given: the engine samples at Anthropic's default, 1.0
        ({"temperature": 0.2, "top_p": 0.9, "top_k": 20}, Sampling(0.2, 0.9, 20)),
        ({"temperature": None}, Sampling(None, None, None)),
    ],
)
def test_sampling(overrides: dict, sampling: Sampling) -> None:
    assert convert([user("q")], **overrides).sampling == sampling


@pytest.mark.parametrize(
    ("overrides", "schema"),
    [
        ({}, None),
        ({"output_config": {"effort": "high"}}, None),
        ({"output_config": {"format": {"type": "json_schema", "schema": {"title": "t"}}}}, {"title": "t"}),
        ({"output_format": {"type": "json_schema", "schema": {"title": "old"}}}, {"title": "old"}),
    ],
)
def test_json_schema(overrides: dict, schema: Any) -> None:
    assert convert([user("q")], **overrides).json_schema == schema


def test_generation_fields_copied() -> None:
    request = convert([user("q")], stop_sequences=["</block>", "\n\n"], stream=False)
    assert (request.model, request.max_tokens, request.stop_sequences, request.stream) == (
        "m",
        8,
        ("</block>", "\n\n"),
        False,
    )


def test_tools_keep_order_and_drop_server_tools() -> None:
    tools = [
        {"name": "B", "input_schema": {"type": "object"}},
        {"type": "bash_20250124", "name": "bash"},
        {"name": "A", "type": "custom", "description": "d"},
    ]
    assert convert([user("q")], tools=tools).tools == [
        {"type": "function", "function": {"name": "B", "description": "", "parameters": {"type": "object"}}},
        {
            "type": "function",
            "function": {"name": "A", "description": "d", "parameters": {"type": "object", "properties": {}}},
        },
    ]


def test_session_and_kind_passed_through() -> None:
    request = to_chat_request(
        parse_create_params({"model": "m", "max_tokens": 1, "messages": [user("q")]}), session_id="abc", kind="title"
    )
    assert (request.session_id, request.kind) == ("abc", "title")


def test_count_tokens_params_convert_like_create_params() -> None:
    body = {key: value for key, value in CLAUDE_CODE_BODY.items() if key not in ("max_tokens", "stream", "temperature")}
    request = to_chat_request(parse_count_tokens_params(body), kind="count")
    main = to_chat_request(parse_create_params(CLAUDE_CODE_BODY))
    assert (request.messages, request.tools, request.has_images, request.kind) == (
        main.messages,
        main.tools,
        True,
        "count",
    )
    assert (request.max_tokens, request.stream, request.stop_sequences) == (
        ChatRequest.__dataclass_fields__["max_tokens"].default,
        False,
        (),
    )
