"""Gemma 3 tool calls, by the convention Google documents for it (its chat template has no tool support).

    ```tool_code
    get_weather(city="Paris")
    ```

Results go back as a ```tool_output``` block in a user turn. The body may also be a JSON call object.
A `<tool_call>{json}</tool_call>` (the generic format) is accepted too.
"""

from __future__ import annotations

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import parse_json_calls, parse_python_calls, python_call_text
from mlxclaude.parsing.tools.format import CallMarker, ToolFormat
from mlxclaude.parsing.tools.hermes import parse_tool_call_tag

TOOL_CODE_OPEN, FENCE = "```tool_code", "```"
TOOL_OUTPUT_OPEN = "```tool_output"


def parse_gemma(body: str) -> list[ToolCall] | None:
    text = body.strip()
    if text[:1] in ("{", "["):
        return parse_json_calls(text)
    return parse_python_calls(text)


def render_gemma(call: ToolCall) -> str:
    return f"{TOOL_CODE_OPEN}\n{python_call_text(call)}\n{FENCE}"


def render_gemma_result(content: str, name: str | None = None) -> str:
    return f"{TOOL_OUTPUT_OPEN}\n{content}\n{FENCE}"


def gemma_tool_system_prompt(tools: list[dict]) -> str:
    """The tools section for Gemma's system text (its template folds it into the first user turn)."""
    from mlxclaude.parsing.tools.generic import example_arguments, tool_listing

    example_name, example_args = example_arguments(tools)
    example = render_gemma(ToolCall(example_name, example_args))
    return (
        "# Tools\n\n"
        "You can call the following tools. Each is listed with its description and the JSON schema of its "
        "arguments.\n\n"
        + tool_listing(tools)
        + "\n\nTo call a tool, write a ```tool_code block holding a Python function call with keyword "
        "arguments (values written as JSON), one call per line, and stop; for example:\n"
        + example
        + "\nThe result comes back in a ```tool_output block. Call a tool only when you need it; "
        "otherwise answer directly."
    )


GEMMA = ToolFormat(
    TOOL_CODE_OPEN,
    FENCE,
    parse_gemma,
    name="gemma",
    extra_markers=(CallMarker("<tool_call>", "</tool_call>", parse_tool_call_tag),),
    render_call=render_gemma,
    render_result=render_gemma_result,
    system_prompt=gemma_tool_system_prompt,
    prompted=True,
    native_history=False,
    quotes="\"'",
    body_kind="code",
    detect=lambda template: "<start_of_turn>" in template,
)
