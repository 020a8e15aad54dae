"""Hermes-style tool calls (Qwen2.5, Qwen3, Hermes, SmolLM3): `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

Small Qwen2.5 models also answer with the bare JSON object and no tags; that counts as a call only
when it is the whole reply and names one of the request's tools (see bare.py).
"""

from __future__ import annotations

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import parse_json_calls
from mlxclaude.parsing.tools.format import ToolFormat
from mlxclaude.parsing.tools.glm import KEY_OPEN, parse_glm_arguments
from mlxclaude.parsing.tools.qwen3_coder import FUNCTION_OPEN, parse_qwen3_coder_xml


def parse_hermes(body: str) -> list[ToolCall] | None:
    """The JSON between the tags: one call object, a list of them, or several in a row. None if it isn't."""
    return parse_json_calls(body)


def parse_tool_call_tag(body: str) -> list[ToolCall] | None:
    """Whatever a `<tool_call>` holds: Hermes JSON, else the Qwen3-Coder or GLM shapes models slip into."""
    text = body.strip()
    if text[:1] in ("{", "["):
        return parse_json_calls(text)
    if text.startswith(FUNCTION_OPEN):
        return parse_qwen3_coder_xml(text)
    if KEY_OPEN in text:
        return parse_glm_arguments(text)
    return None


HERMES = ToolFormat(
    "<tool_call>",
    "</tool_call>",
    parse_tool_call_tag,
    name="hermes",
    bare="reply",
    template_markers=("<tool_call>",),
)
