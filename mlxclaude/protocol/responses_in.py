"""The OpenAI front door's Responses requests (what Codex CLI sends) → the Messages document of the one request
path. Pure.

Mapped: `instructions` and developer/system messages → `system` (in order); user messages (input_text,
input_image) → user turns; assistant messages → assistant text; `function_call` items → tool_use blocks and
`function_call_output` items → the tool_result blocks of the next user turn; reasoning items are left out (their
content is the model's own, encrypted for OpenAI's servers); function tools, and `web_search` → the web search
the server runs; other hosted tools (namespaces, file search, computer use) are left out; `tool_choice`,
`parallel_tool_calls`, `max_output_tokens`, `temperature`, `top_p`, `text.format` (json_schema), `reasoning.effort`.
"""

from __future__ import annotations

from typing import Any, Optional

from mlxclaude.protocol.chat_completions_in import (
    ANY_JSON_OBJECT,
    DEFAULT_MAX_TOKENS,
    Turns,
    anthropic_tool,
    effort_of,
    model_of,
    sampling_of,
    system_message,
    text_of,
    tool_choice_of,
    tool_input,
    user_blocks,
)
from mlxclaude.protocol.errors import ApiError

WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}


def anthropic_document(body: Any, history: Optional[list[dict[str, Any]]] = None, *,
                       default_max_tokens: int = DEFAULT_MAX_TOKENS, web_search: bool = True) -> dict[str, Any]:
    """`history`: the Messages turns of the response `previous_response_id` names, its reply included.
    `web_search`: whether the server runs searches; without, an offered web_search tool is left out (Codex
    offers it on every request, unlike Claude Code, which asks for a search when it sends the tool)."""
    model = model_of(body)
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list):
        raise ApiError.invalid_request("input: a string or a list of input items is required")
    system, turns = _items(items, list(history or []))
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        system = [instructions, *system]
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise ApiError.invalid_request("max_output_tokens: must be an integer of at least 1")
    document: dict[str, Any] = {"model": model, "messages": turns, "stream": bool(body.get("stream")),
                                "max_tokens": max_tokens or default_max_tokens, **sampling_of(body)}
    if system:
        document["system"] = "\n\n".join(system)
    tools = _tools(body.get("tools"), web_search)
    if tools:
        document["tools"] = tools
        choice = tool_choice_of(_flat_choice(body.get("tool_choice")), body.get("parallel_tool_calls"))
        if choice is not None:
            document["tool_choice"] = choice
    output_config = {key: value for key, value in (("format", _text_format(body.get("text"))),
                                                   ("effort", effort_of((body.get("reasoning") or {}).get("effort"))))
                     if value}
    if output_config:
        document["output_config"] = output_config
    return document


def _items(items: list[Any], turns: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    built = Turns(turns)
    add = built.add

    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError.invalid_request(f"input.{index}: must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system_message(system, built, text_of(item.get("content")))
            elif role == "user":
                add("user", user_blocks(item.get("content")))
            elif role == "assistant":
                add("assistant", [{"type": "text", "text": text_of(item.get("content"))}])
            else:
                raise ApiError.invalid_request(f"input.{index}.role: {role!r} is not one of system, developer, "
                                               "user, assistant")
        elif kind == "function_call":
            add("assistant", [{"type": "tool_use", "id": str(item.get("call_id") or item.get("id") or index),
                               "name": str(item.get("name") or ""), "input": tool_input(item.get("arguments"))}])
        elif kind == "function_call_output":
            output = item.get("output")
            add("user", [{"type": "tool_result", "tool_use_id": str(item.get("call_id") or ""),
                          "content": output if isinstance(output, str) else text_of(output)}])
        elif kind in ("reasoning", "web_search_call", "item_reference"):
            continue
        else:
            raise ApiError.invalid_request(f"input.{index}.type: {kind!r} is not supported")
    turns = built.turns
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
    return [text for text in system if text], turns


def _tools(tools: Any, web_search: bool) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "function" and tool.get("name"):
            converted.append(anthropic_tool(tool))
        elif web_search and str(tool.get("type", "")).startswith("web_search"):
            converted.append(dict(WEB_SEARCH_TOOL))
    return converted


def _flat_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function" and "name" in choice:
        return {"function": {"name": choice["name"]}}
    return choice


def _text_format(text: Any) -> Optional[dict[str, Any]]:
    format_ = (text or {}).get("format") if isinstance(text, dict) else None
    if not isinstance(format_, dict) or format_.get("type") in (None, "text"):
        return None
    if format_.get("type") == "json_object":
        return {"type": "json_schema", "schema": ANY_JSON_OBJECT}
    if format_.get("type") == "json_schema" and isinstance(format_.get("schema"), dict):
        return {"type": "json_schema", "schema": format_["schema"]}
    raise ApiError.invalid_request("text.format: json_schema needs a schema object")
