"""Tool history (assistant `tool_calls`, `tool` results) in the shape each family's chat template needs.

Input: HF chat-template messages as protocol.request builds them — assistant messages with
`tool_calls: [{"type": "function", "id", "function": {"name", "arguments": dict}}]` and
`reasoning_content`; `tool` messages with `tool_call_id`, `name`, `content: str`.

What the real templates need:
- Qwen2.5 / Qwen3 / Qwen3-Coder / GLM / Hermes: arguments as a dict (`tojson`, `|items`, `.items()`). As is.
- Llama 3.x: exactly one call per assistant message (the template raises otherwise) and the message's
  text is dropped when it has calls: text goes in its own assistant message, each call in its own,
  each followed by its result.
- Mistral: tool-call ids of 9 alphanumeric characters in both the call and the result (v3 raises
  otherwise); arguments as a dict (v3 `tojson`s the function; v7+/v11 templates take dict or string);
  roles must alternate once tool messages are set aside, so user text right after tool results is
  folded into the last result.
- gpt-oss (Harmony): one call per assistant message, each followed by its result (the template names a
  result after the latest call); reasoning in `thinking`; never both `content` and `thinking` on a
  message with a call (the template raises), so text joins the thinking there.
- Templates without tool support (GENERIC, GEMMA, and families whose template can't render
  `tool_calls`): calls become the family's own markup in the assistant's content, results become
  user turns (`<tool_response name="…">…</tool_response>`), same-role neighbours are merged (Gemma's
  template insists on alternation), and for prompted formats a tools section joins the system message.
Pure and deterministic: the same conversation always renders the same (prefix caching depends on it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.format import ToolFormat, as_arguments
from mlxclaude.parsing.tools.generic import render_generic_result

Message = dict[str, Any]
SEPARATOR = "\n\n"
_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def adapt_history(
    messages: list[Message], tool_format: ToolFormat | None, *, tools: list[dict] | None = None
) -> list[Message]:
    """New messages ready for `apply_chat_template` with this family's template (inputs aren't modified).

    `tools`: the request's tools; for a prompted format (no template support) their description is
    added to the system message, and the template must then be called with `tools=None`.
    """
    adapted = [_normalised(message) for message in messages]
    if tool_format is None:
        return adapted
    if not tool_format.native_history:
        adapted = _as_text(adapted, tool_format)
    elif tool_format.name == "llama3":
        adapted = _one_call_per_message(adapted, text_apart=True)
    elif tool_format.name == "harmony":
        adapted = _harmony(adapted)
    elif tool_format.name == "mistral":
        adapted = _mistral(adapted)
    if tool_format.prompted and tools:
        adapted = with_tool_system_prompt(adapted, tool_format, tools)
    return adapted


def with_tool_system_prompt(messages: list[Message], tool_format: ToolFormat, tools: list[dict]) -> list[Message]:
    """The tools section after the system message's text (a new system message if there is none)."""
    if tool_format.system_prompt is None:
        return messages
    section = tool_format.system_prompt(tools)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        content = _text(first.get("content"))
        first["content"] = f"{content}{SEPARATOR}{section}" if content.strip() else section
        return [first, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]


# --- shared ---------------------------------------------------------------------------------------------


def _normalised(message: Message) -> Message:
    copy = dict(message)
    if copy.get("tool_calls"):
        copy["tool_calls"] = [_normalised_call(call) for call in copy["tool_calls"]]
    return copy


def _normalised_call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    copy = dict(call)
    function = copy.get("function")
    if isinstance(function, dict):
        function = dict(function)
        arguments = as_arguments(function.get("arguments"))
        if arguments is not None:
            function["arguments"] = arguments
        copy["function"] = function
    return copy


def _call_of(call: Any) -> ToolCall:
    function = call.get("function", call) if isinstance(call, dict) else {}
    arguments = as_arguments(function.get("arguments"))
    return ToolCall(name=str(function.get("name", "")), arguments=arguments if arguments is not None else {})


def _text(content: Any) -> str:
    """Message content as text (a list of text parts is joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content
                       if isinstance(part, (str, dict)))
    return str(content)


def _join(*parts: str) -> str:
    return SEPARATOR.join(part for part in parts if part and part.strip())


# --- history as text --------------------------------------------------------------------------------------


def _as_text(messages: list[Message], tool_format: ToolFormat) -> list[Message]:
    render_result = tool_format.render_result or render_generic_result
    converted: list[Message] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = "\n".join(tool_format.render(_call_of(call)) for call in message["tool_calls"])
            copy = {key: value for key, value in message.items() if key != "tool_calls"}
            copy["content"] = _join(_text(message.get("content")), calls)
            converted.append(copy)
        elif role == "tool":
            converted.append({"role": "user", "content": render_result(_text(message.get("content")),
                                                                       message.get("name"))})
        else:
            converted.append(message)
    return _merge_neighbours(converted)


def _merge_neighbours(messages: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for message in messages:
        previous = merged[-1] if merged else None
        if previous is not None and message.get("role") in ("user", "assistant") and previous.get("role") == message.get("role"):
            combined = dict(previous)
            combined["content"] = _join(_text(previous.get("content")), _text(message.get("content")))
            if previous.get("reasoning_content") or message.get("reasoning_content"):
                combined["reasoning_content"] = _join(previous.get("reasoning_content") or "",
                                                      message.get("reasoning_content") or "")
            merged[-1] = combined
        else:
            merged.append(message)
    return merged


# --- one call per message (Llama 3, Harmony) ---------------------------------------------------------------


def _one_call_per_message(messages: list[Message], *, text_apart: bool) -> list[Message]:
    """Split assistant messages with several calls; each call is followed by its own result when found."""
    out: list[Message] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        calls = message.get("tool_calls") or []
        if message.get("role") != "assistant" or not calls:
            out.append(message)
            i += 1
            continue
        results: list[Message] = []
        j = i + 1
        while j < len(messages) and messages[j].get("role") == "tool":
            results.append(messages[j])
            j += 1
        if len(calls) == 1 and not (text_apart and _text(message.get("content")).strip()):
            out += [message, *results]
            i = j
            continue
        rest = {key: value for key, value in message.items() if key not in ("tool_calls", "content")}
        if text_apart and _text(message.get("content")).strip():
            out.append({**rest, "role": "assistant", "content": message.get("content")})
            rest = {key: value for key, value in rest.items() if key != "reasoning_content"}
        unmatched = list(results)
        for n, call in enumerate(calls):
            piece = {**rest, "role": "assistant", "content": "" if text_apart or n else message.get("content", ""),
                     "tool_calls": [call]}
            if n:
                piece.pop("reasoning_content", None)
                piece.pop("thinking", None)
            out.append(piece)
            match = _result_for(call, unmatched, position=n, total=len(calls))
            if match is not None:
                unmatched.remove(match)
                out.append(match)
        out += unmatched
        i = j
    return out


def _result_for(call: Any, results: list[Message], *, position: int, total: int) -> Message | None:
    call_id = call.get("id") if isinstance(call, dict) else None
    if call_id:
        for result in results:
            if result.get("tool_call_id") == call_id:
                return result
    if len(results) == total - position and results:  # no ids: results in call order
        return results[0]
    return None


def _harmony(messages: list[Message]) -> list[Message]:
    renamed: list[Message] = []
    for message in messages:
        if message.get("role") == "assistant":
            message = dict(message)
            thinking = message.pop("reasoning_content", None)
            if thinking:
                message["thinking"] = thinking
            if message.get("tool_calls") and message.get("thinking") and _text(message.get("content")).strip():
                message["thinking"] = _join(message["thinking"], _text(message["content"]))
                message["content"] = ""
        elif message.get("role") == "tool":
            message = {**message, "content": _text(message.get("content"))}
        renamed.append(message)
    return _one_call_per_message(renamed, text_apart=False)


# --- Mistral ---------------------------------------------------------------------------------------------


def mistral_tool_call_id(tool_use_id: str) -> str:
    """A stable 9-character alphanumeric id for any id (Mistral templates accept nothing else)."""
    if len(tool_use_id) == 9 and tool_use_id.isalnum() and tool_use_id.isascii():
        return tool_use_id
    number = int.from_bytes(hashlib.sha256(tool_use_id.encode("utf-8")).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


def _mistral(messages: list[Message]) -> list[Message]:
    out: list[Message] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            message = dict(message)
            message["tool_calls"] = [
                {**call, "id": mistral_tool_call_id(str(call.get("id") or f"call{n}"))} if isinstance(call, dict) else call
                for n, call in enumerate(message["tool_calls"])
            ]
        elif role == "tool":
            message = {**message, "content": _text(message.get("content"))}
            if message.get("tool_call_id") is not None:
                message["tool_call_id"] = mistral_tool_call_id(str(message["tool_call_id"]))
        elif role == "user" and out and out[-1].get("role") == "tool":
            # Roles must alternate user/assistant once tool messages are set aside: fold into the result.
            last = dict(out[-1])
            last["content"] = _join(_text(last.get("content")), _text(message.get("content")))
            out[-1] = last
            continue
        out.append(message)
    return out
