"""The typed request (ChatRequest) → an OpenAI Chat Completions body: the one translation for every
OpenAI-compatible engine (vLLM, SGLang, llama.cpp, Ollama, LM Studio, mlx_lm.server) and Azure. Pure.

It serialises what the typed request holds, so its placement rules are the local engine's (protocol/
request.py): the system prompt first (Claude Code's billing line dropped), system text among the messages
as `<system-reminder>` user text, tool results as `tool` messages before the rest of their user turn (their
images in the user message after them), assistant thinking as `reasoning_content`, tool calls with their
arguments as JSON text, a final assistant turn (the prefill) last.

Options:
- thinking {enabled, budget_tokens} → reasoning_effort: low below 4096, medium below 16384, else high; with
  no budget, output_config.effort (low/medium/high; xhigh and max → high); thinking disabled → none;
- tool_choice and parallel_tool_calls only along with tools (OpenAI rejects them otherwise);
- sampling parameters only when the client gave them.
"""

from __future__ import annotations

import json
from typing import Any

from mlxclaude.protocol.chat import ChatRequest

LOW_EFFORT_BELOW, MEDIUM_EFFORT_BELOW = 4096, 16384
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_openai_chat(chat: ChatRequest, *, model: str, stream: bool, drop: frozenset[str] = frozenset()) -> dict:
    """The Chat Completions body for `chat`; keys in `drop` are left out."""
    body: dict[str, Any] = {"model": model, "messages": openai_messages(chat)}
    if chat.tools:
        body["tools"] = [_tool(tool) for tool in chat.tools]
        choice = chat.tool_choice
        body["tool_choice"] = ({"type": "function", "function": {"name": choice.name}} if choice.type == "tool"
                               else _TOOL_CHOICES[choice.type])
        if choice.disable_parallel_tool_use:
            body["parallel_tool_calls"] = False
    body["max_tokens"] = chat.max_tokens
    sampling = chat.sampling
    for key, value in (("temperature", sampling.temperature), ("top_p", sampling.top_p), ("top_k", sampling.top_k)):
        if value is not None:
            body[key] = value
    if chat.stop_sequences:
        body["stop"] = list(chat.stop_sequences)
    if chat.user_id:
        body["user"] = chat.user_id
    if chat.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": chat.json_schema, "strict": True}}
    if (effort := reasoning_effort(chat)) is not None:
        body["reasoning_effort"] = effort
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    for key in drop:
        body.pop(key, None)
    return body


def reasoning_effort(chat: ChatRequest) -> str | None:
    if chat.thinking == "disabled":
        return None
    if chat.thinking == "enabled" and chat.thinking_budget is not None:
        budget = chat.thinking_budget
        return "low" if budget < LOW_EFFORT_BELOW else "medium" if budget < MEDIUM_EFFORT_BELOW else "high"
    return _EFFORTS.get(chat.effort) if chat.effort else None


def openai_messages(chat: ChatRequest) -> list[dict[str, Any]]:
    messages = [_message(message) for message in chat.messages]
    if chat.assistant_prefill:
        messages.append({"role": "assistant", "content": chat.assistant_prefill})
    return messages


def _message(message: dict[str, Any]) -> dict[str, Any]:
    role = message["role"]
    if role == "assistant":
        calls = [{"id": call["id"], "type": "function",
                  "function": {"name": call["function"]["name"],
                               "arguments": json.dumps(call["function"]["arguments"], ensure_ascii=False)}}
                 for call in message.get("tool_calls", ())]
        out: dict[str, Any] = {"role": "assistant", "content": message["content"] or (None if calls else "")}
        if message.get("reasoning_content"):
            out["reasoning_content"] = message["reasoning_content"]
        if calls:
            out["tool_calls"] = calls
        return out
    if role == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message["content"]}
    return {"role": role, "content": _content(message["content"])}


def _content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A string stays one; a parts list (text and images) becomes OpenAI's parts."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image" and (part.get("url") or part.get("data")):
            url = part.get("url") or f"data:{part.get('media_type') or 'image/png'};base64,{part['data']}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {key: value for key, value in tool["function"].items() if value or key == "parameters"}
    return {"type": "function", "function": function}
