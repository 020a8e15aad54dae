import json

import pytest

from mlxclaude.parsing.events import TextPiece, ToolCall
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.tools import GEMMA, GENERIC, gemma_tool_system_prompt, generic_tool_system_prompt
from mlxclaude.parsing.tools.generic import example_arguments

BASH = {"name": "Bash", "description": "Run a shell command.\n\nUse it for git.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"},
                                                         "timeout": {"type": "number", "description": "ms"}},
                         "required": ["command"]}}
TOOLS = [
    {"type": "function", "function": {"name": "Read", "description": "Read a file from disk",
                                      "parameters": {"type": "object", "properties": {
                                          "file_path": {"type": "string"}, "offset": {"type": "integer"},
                                          "limit": {"type": "integer"}}, "required": ["file_path"]}}},
    {"type": "function", "function": {"name": "TodoWrite", "description": "Update the todo list", "parameters": {
        "type": "object", "properties": {"todos": {"type": "array", "items": {"type": "object", "properties": {
            "content": {"type": "string"}, "status": {"enum": ["pending", "in_progress", "completed"]}}}}},
        "required": ["todos"]}}},
    {"type": "function", "function": {"name": "mcp__github__create_issue", "description": "",
                                      "parameters": {"type": "object", "properties": {}}}},
    BASH,  # Anthropic form is accepted too
]


@pytest.mark.parametrize("prompt", [generic_tool_system_prompt, gemma_tool_system_prompt])
def test_the_prompt_lists_every_tool_with_its_schema(prompt):
    text = prompt(TOOLS)
    assert text.startswith("# Tools")
    for tool in TOOLS:
        function = tool.get("function", tool)
        schema = function.get("parameters", function.get("input_schema"))
        assert f"## {function['name']}" in text
        assert json.dumps(schema, ensure_ascii=False, separators=(",", ":")) in text
        if function["description"]:
            assert function["description"] in text
    assert text == prompt(json.loads(json.dumps(TOOLS)))  # deterministic: the prompt prefix caches


def test_the_generic_prompt_shows_the_exact_call_format():
    text = generic_tool_system_prompt(TOOLS)
    assert '<tool_call>\n{"name": "Read", "arguments": {"file_path": "..."}}\n</tool_call>' in text
    assert "<tool_response>" in text


def test_the_gemma_prompt_shows_a_tool_code_block():
    text = gemma_tool_system_prompt(TOOLS)
    assert '```tool_code\nRead(file_path="...")\n```' in text and "```tool_output" in text


def test_example_arguments_follow_the_schema():
    assert example_arguments(TOOLS[1:2]) == ("TodoWrite", {"todos": []})
    assert example_arguments([]) == ("tool_name", {"argument": "value"})
    enum_tool = {"name": "Mode", "input_schema": {"type": "object", "properties": {"m": {"enum": ["a", "b"]}},
                                                  "required": ["m"]}}
    assert example_arguments([enum_tool]) == ("Mode", {"m": "a"})


@pytest.mark.parametrize("fmt,prompt", [(GENERIC, generic_tool_system_prompt), (GEMMA, gemma_tool_system_prompt)],
                         ids=["generic", "gemma"])
def test_the_example_in_the_prompt_parses_as_a_call(fmt, prompt):
    text = prompt(TOOLS)
    start = text.rindex(fmt.open)  # the example comes after the prose that names the markers
    end = text.index(fmt.close, start + len(fmt.open)) + len(fmt.close)
    parser = ReplyParser(emit_thinking=True, tool_format=fmt, tools=TOOLS)
    assert parser.feed(text[start:end]) + parser.finish() == [ToolCall("Read", {"file_path": "..."})]


CALLS = [
    ToolCall("Read", {"file_path": "/src/app.py", "offset": 10, "limit": 50}),
    ToolCall("TodoWrite", {"todos": [{"content": "Fix the \"bug\" in </tool_call> handling", "status": "pending"}]}),
    ToolCall("Bash", {"command": "git log --oneline | head -5 && echo '```'", "timeout": 1.5}),
    ToolCall("mcp__github__create_issue", {}),
]


@pytest.mark.parametrize("fmt", [GENERIC, GEMMA], ids=["generic", "gemma"])
def test_rendered_calls_round_trip_through_the_parser(fmt):
    reply = "I'll do all of it.\n" + "\n".join(fmt.render(call) for call in CALLS)
    for size in (1, 3, 7, len(reply)):
        parser = ReplyParser(emit_thinking=True, tool_format=fmt, tools=TOOLS)
        events = []
        for i in range(0, len(reply), size):
            events += parser.feed(reply[i:i + size])
        events += parser.finish()
        text = "".join(e.text for e in events if isinstance(e, TextPiece))
        assert text == "I'll do all of it."
        assert [e for e in events if isinstance(e, ToolCall)] == CALLS
