"""What a request asks of the decoder: which tool calls may or must come, or which JSON. Pure.

    auto   watch: free text; once the model writes a call's open marker, the rest of the call is
           constrained (a tool from the request, its schema, the close marker)
    any    forced: the reply is one call from its first token (no text before it), to any of the tools
    tool   forced, to the named tool only
    none   forbid: the open markers can never be completed (the tools are still rendered, as the
           Anthropic API does, so the prompt — and the prompt cache — stay the same)
    disable_parallel_tool_use: after the first call only end-of-reply is allowed
    output_config.format json_schema: the reply is one JSON value for that schema, then end-of-reply

Forced calls and JSON replies when the prompt leaves the model inside thinking (`<think>` opened by
the template): the grammar starts by closing thinking, so there is no thinking for them. The real API
refuses forced tool use with enabled thinking; closing it is the local equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from mlxclaude.parsing.tools.catalog import tool_name_and_schema
from mlxclaude.protocol.chat import ChatRequest

Mode = Literal["off", "watch", "forced", "forbid", "json"]


@dataclass(frozen=True)
class ConstraintPlan:
    mode: Mode
    only_tool: Optional[str] = None  # forced to this tool (tool_choice "tool")
    single_call: bool = False  # after one call, only end-of-reply
    close_thinking: bool = False  # the reply starts inside thinking: forced grammars close it first


OFF = ConstraintPlan("off")


def tool_names(chat: ChatRequest) -> list[str]:
    names = []
    for tool in chat.tools:
        entry = tool_name_and_schema(tool)
        if entry is not None:
            names.append(entry[0])
    return names


def plan_for(chat: ChatRequest, *, has_tool_format: bool, starts_in_thinking: bool) -> ConstraintPlan:
    choice = chat.tool_choice
    if chat.json_schema is not None:
        return ConstraintPlan("json", close_thinking=starts_in_thinking)
    names = tool_names(chat)
    if not names or not has_tool_format:
        return OFF
    single = bool(choice.disable_parallel_tool_use)
    if choice.type == "none":
        return ConstraintPlan("forbid")
    if choice.type == "any":
        return ConstraintPlan("forced", single_call=single, close_thinking=starts_in_thinking)
    if choice.type == "tool" and choice.name in names:
        return ConstraintPlan("forced", only_tool=choice.name, single_call=single,
                              close_thinking=starts_in_thinking)
    return ConstraintPlan("watch", single_call=single)
