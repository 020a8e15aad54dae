"""Anthropic Messages request (a plain dict) → OpenAI Chat Completions request body. Pure.

Message placement:
- the system prompt (string, or text blocks joined with "\\n", Claude Code's billing header dropped as
  protocol.canon does for the local engine, so the upstream's prefix cache keeps hitting) is the first message;
- a `role: "system"` message inside `messages` becomes `<system-reminder>` user text at its position
  (vLLM/llama.cpp templates want a single leading system message);
- tool_result blocks become `tool` messages placed before the rest of their user turn, an error result
  prefixed with "Error: "; images inside tool results move to the user message that follows them
  (OpenAI tool messages carry text only);
- consecutive user (or assistant) messages are merged: many templates insist on alternating roles;
- assistant thinking becomes `reasoning_content`, redacted_thinking is dropped, tool_use becomes `tool_calls`.

Options:
- thinking {enabled, budget_tokens} → reasoning_effort: low below 4096, medium below 16384, else high;
  with no thinking budget, output_config.effort (low/medium/high; xhigh and max → high) is used instead;
  thinking disabled → nothing.
- tool_choice and parallel_tool_calls are only sent along with tools (OpenAI rejects them otherwise).
"""

from __future__ import annotations

import json
from typing import Any

from mlxclaude.protocol.canon import canonical_system_text, drop_billing_header

TEXT_SEPARATOR = "\n\n"
SYSTEM_BLOCK_SEPARATOR = "\n"
REMINDER_OPEN, REMINDER_CLOSE = "<system-reminder>", "</system-reminder>"
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
LOW_EFFORT_BELOW, MEDIUM_EFFORT_BELOW = 4096, 16384
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}

Message = dict[str, Any]
Part = dict[str, Any]


def to_openai_chat(request: dict, *, model: str, stream: bool, drop: frozenset[str] = frozenset()) -> dict:
    """The Chat Completions body for an Anthropic Messages request; keys in `drop` are left out."""
    body: dict[str, Any] = {"model": model, "messages": _messages(request)}
    tools = custom_tools(request.get("tools"))
    if tools:
        body["tools"] = [_tool(tool) for tool in tools]
        choice = request.get("tool_choice")
        if isinstance(choice, dict):
            if (mapped := _tool_choice(choice)) is not None:
                body["tool_choice"] = mapped
            if choice.get("disable_parallel_tool_use"):
                body["parallel_tool_calls"] = False
    if request.get("max_tokens") is not None:
        body["max_tokens"] = request["max_tokens"]
    for key in ("temperature", "top_p", "top_k"):
        if request.get(key) is not None:
            body[key] = request[key]
    if request.get("stop_sequences"):
        body["stop"] = list(request["stop_sequences"])
    metadata = request.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        body["user"] = metadata["user_id"]
    if (schema := _json_schema(request)) is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": schema, "strict": True}}
    if (effort := _reasoning_effort(request)) is not None:
        body["reasoning_effort"] = effort
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    for key in drop:
        body.pop(key, None)
    return body


def custom_tools(tools: Any) -> list[dict[str, Any]]:
    """The request's tools the client runs; server tools (a `type` other than custom: web_search_…) can't run
    upstream."""
    return [tool for tool in tools or () if isinstance(tool, dict) and isinstance(tool.get("name"), str)
            and tool.get("type") in (None, "custom")]


# --- options ------------------------------------------------------------------------------------------------


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    schema = tool.get("input_schema")
    function["parameters"] = schema if isinstance(schema, dict) else dict(EMPTY_SCHEMA)
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(kind)


def _json_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    for holder in (request.get("output_config"), {"format": request.get("output_format")}):
        fmt = holder.get("format") if isinstance(holder, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            return fmt["schema"]
    return None


def _reasoning_effort(request: dict[str, Any]) -> str | None:
    thinking = request.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    if kind == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        budget = thinking["budget_tokens"]
        return "low" if budget < LOW_EFFORT_BELOW else "medium" if budget < MEDIUM_EFFORT_BELOW else "high"
    config = request.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    return _EFFORTS.get(effort) if isinstance(effort, str) else None


# --- messages -----------------------------------------------------------------------------------------------


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return canonical_system_text(system)
    if isinstance(system, list):
        texts = [block.get("text", "") for block in system if isinstance(block, dict) and block.get("type") == "text"]
        return SYSTEM_BLOCK_SEPARATOR.join(drop_billing_header(texts))
    return ""


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or () if isinstance(block, dict)]


def _messages(request: dict[str, Any]) -> list[Message]:
    messages: list[Message] = []
    if system := _system_text(request.get("system")):
        messages.append({"role": "system", "content": system})
    for message in request.get("messages") or ():
        role = message.get("role")
        if role == "assistant":
            _append(messages, _assistant(message.get("content")))
        elif role == "system":
            if text := _system_section_text(message.get("content")):
                _append(messages, {"role": "user", "content": _as_reminder(text)})
        else:
            tool_messages, parts = _user(message.get("content"))
            messages.extend(tool_messages)
            if parts:
                _append(messages, {"role": "user", "content": _content(parts)})
    return messages


def _append(messages: list[Message], message: Message) -> None:
    """Add `message`, merged into the previous one when both are plain user or assistant turns."""
    last = messages[-1] if messages else None
    if last is None or last["role"] != message["role"] or message["role"] not in ("user", "assistant"):
        messages.append(message)
        return
    last["content"] = _merge_content(last.get("content"), message.get("content"))
    if message.get("reasoning_content"):
        last["reasoning_content"] = TEXT_SEPARATOR.join(
            part for part in (last.get("reasoning_content"), message["reasoning_content"]) if part)
    if message.get("tool_calls"):
        last["tool_calls"] = [*last.get("tool_calls", []), *message["tool_calls"]]


def _merge_content(first: Any, second: Any) -> Any:
    if not first:
        return second
    if not second:
        return first
    if isinstance(first, str) and isinstance(second, str):
        return first + TEXT_SEPARATOR + second
    as_parts = lambda value: [{"type": "text", "text": value}] if isinstance(value, str) else list(value)  # noqa: E731
    return as_parts(first) + as_parts(second)


def _content(parts: list[Part]) -> str | list[Part]:
    """A string when every part is text, else the OpenAI parts list."""
    if all(part["type"] == "text" for part in parts):
        return TEXT_SEPARATOR.join(part["text"] for part in parts)
    return parts


def _as_reminder(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith(REMINDER_OPEN) and stripped.endswith(REMINDER_CLOSE):
        return stripped
    return f"{REMINDER_OPEN}\n{text}\n{REMINDER_CLOSE}"


def _system_section_text(content: Any) -> str:
    parts = []
    for block in _blocks(content):
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "mid_conv_system":
            parts.append(_system_section_text(block.get("content")))
    return SYSTEM_BLOCK_SEPARATOR.join(part for part in parts if part)


def _user(content: Any) -> tuple[list[Message], list[Part]]:
    """(tool messages, the other parts in order) of one user turn."""
    tool_messages: list[Message] = []
    moved_images: list[Part] = []
    parts: list[Part] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "tool_result":
            texts: list[str] = []
            for inner in _parts(block.get("content")):
                if inner["type"] == "text":
                    texts.append(inner["text"])
                else:
                    moved_images.append(inner)
            text = TEXT_SEPARATOR.join(texts)
            if block.get("is_error"):
                text = f"Error: {text}"
            tool_messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text})
        elif kind == "mid_conv_system":
            if text := _system_section_text(block.get("content")):
                parts.append({"type": "text", "text": _as_reminder(text)})
        else:
            parts.extend(_parts([block]))
    return tool_messages, moved_images + parts


def _parts(content: Any) -> list[Part]:
    """OpenAI content parts for user-side blocks: text, images, documents and search results as text."""
    parts: list[Part] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            if block.get("text"):
                parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            if (url := _image_url(block.get("source"))) is not None:
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "document":
            if text := _document_text(block):
                parts.append({"type": "text", "text": text})
        elif kind == "search_result":
            texts = [block.get("title") or "", block.get("source") or "",
                     *(inner.get("text", "") for inner in _blocks(block.get("content")))]
            parts.append({"type": "text", "text": "\n".join(text for text in texts if text)})
    return parts


def _image_url(source: Any) -> str | None:
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64" and source.get("data"):
        return f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    if source.get("type") == "url" and source.get("url"):
        return source["url"]
    return None  # file ids name files on Anthropic's side


def _document_text(block: dict[str, Any]) -> str:
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    if source.get("type") == "text":
        body = source.get("data") or ""
    elif source.get("type") == "content":
        body = TEXT_SEPARATOR.join(part["text"] for part in _parts(source.get("content")) if part["type"] == "text")
    else:  # base64/url/file sources are PDFs: not readable as chat text
        body = ""
    if not body:
        return ""
    return "\n".join(text for text in (block.get("title") or "", block.get("context") or "", body) if text)


def _assistant(content: Any) -> Message:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            texts.append(block["text"])
        elif kind == "thinking" and block.get("thinking"):
            thoughts.append(block["thinking"])
        elif kind == "tool_use":
            arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
            calls.append({"id": block.get("id", ""), "type": "function",
                          "function": {"name": block.get("name", ""),
                                       "arguments": json.dumps(arguments, ensure_ascii=False)}})
    message: Message = {"role": "assistant", "content": TEXT_SEPARATOR.join(texts) if texts or not calls else None}
    if thoughts:
        message["reasoning_content"] = TEXT_SEPARATOR.join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message
