"""The OpenAI front door's requests: a Chat Completions body → the Anthropic Messages document the one request
path takes (parsing into the typed request, routes, fallbacks, the prompt cache, batching, constraints,
accounting), so a request shows alike whichever door it came in by. Pure.

Mapped: system and developer messages → `system`; user text and image parts (a data: URL → a base64 image, any
other URL → a url image); assistant text and `tool_calls` → text and tool_use blocks; `tool` messages → the
tool_result blocks of the next user turn; function tools, `tool_choice`, `parallel_tool_calls`,
`response_format` (json_schema → output_config.format; json_object → any JSON object), `stop`,
`max_tokens`/`max_completion_tokens`, `temperature`, `top_p`, `stream`, `reasoning_effort` → thinking effort.
`seed`, `n` > 1, `logprobs`, `logit_bias` are refused or ignored as OpenAI itself would treat an unsupported
option: `n` > 1 and `logprobs` are a 400, the rest are ignored.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.request import as_system_reminder

DEFAULT_MAX_TOKENS = 8192  # OpenAI's max_tokens is optional; Anthropic's document needs one
ANY_JSON_OBJECT = {"type": "object"}


def model_of(body: Any) -> str:
    """The model id of an OpenAI request body (the body must be an object)."""
    if not isinstance(body, dict):
        raise ApiError.invalid_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError.invalid_request("model: a model id is required")
    return model


def sampling_of(body: dict[str, Any]) -> dict[str, Any]:
    """temperature (OpenAI's 0–2, within Anthropic's 0–1) and top_p, where given."""
    fields: dict[str, Any] = {}
    if body.get("temperature") is not None:
        fields["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        fields["top_p"] = body["top_p"]
    return fields


def anthropic_document(body: Any, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    model = model_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError.invalid_request("messages: at least one message is required")
    if body.get("n") not in (None, 1):
        raise ApiError.invalid_request("n: only one choice per request is supported")
    if body.get("logprobs"):
        raise ApiError.invalid_request("logprobs: not supported by this server")
    system, turns = _messages(messages)
    document: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": _max_tokens(body, default_max_tokens),
                                "stream": bool(body.get("stream")), **sampling_of(body)}
    if system:
        document["system"] = system
    stop = body.get("stop")
    if stop:
        document["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = _tools(body.get("tools"))
    if tools:
        document["tools"] = tools
        choice = tool_choice_of(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            document["tool_choice"] = choice
    output_format = _response_format(body.get("response_format"))
    effort = body.get("reasoning_effort")
    if output_format is not None or effort:
        document["output_config"] = {key: value for key, value in
                                     (("format", output_format), ("effort", effort_of(effort))) if value}
    user = body.get("user")
    if isinstance(user, str) and user:
        document["metadata"] = {"user_id": user}
    return document


def _max_tokens(body: dict, default: int) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError.invalid_request("max_tokens: must be an integer of at least 1")
    return value


def text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(part.get("text", "") for part in content
                           if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"))
    raise ApiError.invalid_request("messages: content must be a string or a list of parts")


def user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ApiError.invalid_request("messages: content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text", "output_text"):
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind in ("image_url", "input_image"):
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            blocks.append(image_block(str(url or "")))
        else:
            raise ApiError.invalid_request(f"messages: a content part of type {kind!r} is not supported")
    return blocks


def image_block(url: str) -> dict[str, Any]:
    """An Anthropic image block from an OpenAI image URL (a data: URL carries the image itself)."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        if ";base64" not in header:
            raise ApiError.invalid_request("image_url: a data: URL must be base64")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if not url:
        raise ApiError.invalid_request("image_url: a URL is required")
    return {"type": "image", "source": {"type": "url", "url": url}}


def tool_input(arguments: Any) -> dict[str, Any]:
    """A call's arguments (OpenAI: a JSON string) as the tool_use input object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, json.JSONDecodeError):
        return {"_raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"_value": value}


def system_message(system: list[str], turns: "Turns", text: str) -> None:
    """Before the conversation starts, system text joins the system prompt; later (Codex adds developer messages
    as a session goes on) it stays in its place as a reminder in the user turn, so the prompt before it, and the
    prompt cache's prefix, do not change."""
    if not text:
        return
    if turns.turns:
        turns.add("user", [{"type": "text", "text": as_system_reminder(text)}])
    else:
        system.append(text)


class Turns:
    """Messages turns in order: blocks of the same role as the last turn join it (tool results after tool
    results, a call after the text before it)."""

    def __init__(self, turns: Optional[list[dict[str, Any]]] = None) -> None:
        self.turns = list(turns or [])

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.turns and self.turns[-1]["role"] == role:
            last = self.turns[-1]["content"]
            last = [{"type": "text", "text": last}] if isinstance(last, str) else list(last)
            self.turns[-1] = {"role": role, "content": [*last, *blocks]}
        else:
            self.turns.append({"role": role, "content": list(blocks)})


def _messages(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns = Turns()
    add = turns.add

    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError.invalid_request(f"messages.{index}: must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system_message(system, turns, text_of(message.get("content")))
        elif role == "user":
            add("user", user_blocks(message.get("content")))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = text_of(message.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": str(call.get("id") or f"call_{index}"),
                               "name": str(function.get("name") or ""),
                               "input": tool_input(function.get("arguments"))})
            add("assistant", blocks or [{"type": "text", "text": ""}])
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                          "content": text_of(message.get("content"))}])
        else:
            raise ApiError.invalid_request(f"messages.{index}.role: {role!r} is not one of system, developer, "
                                           "user, assistant, tool")
    if not turns.turns:
        raise ApiError.invalid_request("messages: at least one user message is required")
    return "\n\n".join(part for part in system if part), turns.turns


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise ApiError.invalid_request("tools: must be a list")
    converted = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ApiError.invalid_request(f"tools.{index}: only function tools with a name are supported")
        function = tool["function"] if isinstance(tool.get("function"), dict) else tool  # nested, or flat (Responses)
        if not function.get("name"):
            raise ApiError.invalid_request(f"tools.{index}: only function tools with a name are supported")
        converted.append(anthropic_tool(function))
    return converted


def anthropic_tool(function: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function (name, description, parameters) as an Anthropic tool."""
    return {"name": function["name"], "description": function.get("description") or "",
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}


def tool_choice_of(choice: Any, parallel: Optional[bool]) -> Optional[dict[str, Any]]:
    extra = {"disable_parallel_tool_use": True} if parallel is False else {}
    if choice is None or choice == "auto":
        return {"type": "auto", **extra} if extra else None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any", **extra}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name:
            return {"type": "tool", "name": name, **extra}
    raise ApiError.invalid_request("tool_choice: must be auto, none, required or a named function")


def _response_format(value: Any) -> Optional[dict[str, Any]]:
    if not value or not isinstance(value, dict) or value.get("type") == "text":
        return None
    if value.get("type") == "json_object":
        return {"type": "json_schema", "schema": ANY_JSON_OBJECT}
    if value.get("type") == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema") or value.get("schema")
        if not isinstance(schema, dict):
            raise ApiError.invalid_request("response_format.json_schema.schema: a JSON schema object is required")
        return {"type": "json_schema", "schema": schema}
    raise ApiError.invalid_request(f"response_format.type: {value.get('type')!r} is not supported")


def effort_of(value: Any) -> Optional[str]:
    return {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}.get(str(value))
