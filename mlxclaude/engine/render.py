"""Chat template rendering: ChatRequest -> prompt text and token ids."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Optional

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.engine.cache.boundary import message_offsets, system_end
from mlxclaude.engine.special_tokens import SpecialTokens, special_tokens
from mlxclaude.parsing.tools import ToolFormat
from mlxclaude.parsing.tools.history import adapt_history
from mlxclaude.protocol.chat import ChatRequest


class RenderError(Exception):
    """The model's chat template rejected the conversation."""


def json_schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with only a JSON object (no prose, no code fences) that matches this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )


def messages_for_template(chat: ChatRequest, tool_format: Optional[ToolFormat] = None) -> list[dict[str, Any]]:
    """Messages in the shape the model's template needs: tool history adapted to `tool_format` (and, for a
    template without tool support, the tools described in the system message), plus any JSON-output instruction."""
    messages = [dict(message) for message in chat.messages]
    if tool_format is not None:
        messages = adapt_history(messages, tool_format, tools=chat.tools or None)
    if chat.json_schema is not None:
        instruction = json_schema_instruction(chat.json_schema)
        if messages and messages[0]["role"] == "system":
            messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}
        else:
            messages.insert(0, {"role": "system", "content": instruction})
    return messages


def template_tools(chat: ChatRequest, tool_format: Optional[ToolFormat] = None) -> Optional[list[dict[str, Any]]]:
    """The `tools=` for apply_chat_template: none for a prompted format (they are in the system message)."""
    if not chat.tools or (tool_format is not None and tool_format.prompted):
        return None
    return chat.tools


def template_kwargs(chat: ChatRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if chat.thinking == "enabled":
        kwargs["enable_thinking"] = True
    elif chat.thinking == "disabled":
        kwargs["enable_thinking"] = False
    return kwargs


def ends_inside_thinking(text: str, think_open: Optional[str], think_close: Optional[str]) -> bool:
    if not think_open:
        return False
    opened = text.rfind(think_open)
    return opened >= 0 and (not think_close or text.rfind(think_close) < opened)


def escape_chat(guard: SpecialTokens, chat: ChatRequest) -> ChatRequest:
    """The request with every special-token string in what it renders (messages, tools, schema, prefill) replaced
    by a sentinel; `guard.encode` puts them back as text after rendering (engine/special_tokens.py)."""
    return replace(chat, messages=guard.escape(chat.messages), tools=guard.escape(chat.tools),
                   json_schema=guard.escape(chat.json_schema), assistant_prefill=guard.escape(chat.assistant_prefill))


def render_chat(tokenizer: Any, chat: ChatRequest, think_open: Optional[str], think_close: Optional[str],
                tool_format: Optional[ToolFormat] = None) -> RenderedPrompt:
    """Render through the model's chat template; pass the model's `tool_format` (ModelInfo.tool_format) so
    tool history takes the family's shape. Without it, messages go to the template as they are.

    Special-token strings in the request (a tool result holding `<|im_end|>`…) are tokenized as text: only the
    template's own markers become special tokens."""
    guard = special_tokens(tokenizer)
    chat = escape_chat(guard, chat)  # what mlxclaude adds below (tool history markup, JSON instruction) is not escaped
    messages, tools, kwargs = messages_for_template(chat, tool_format), template_tools(chat, tool_format), template_kwargs(chat)
    try:
        rendered = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False,
                                                 **kwargs)
    except Exception as exc:  # jinja2 TemplateError, or a template's raise_exception()
        raise RenderError(f"the model's chat template rejected this conversation: {exc}") from exc
    rendered += chat.assistant_prefill
    encoded = guard.encode(rendered)
    text, tokens = encoded.text, encoded.tokens
    return RenderedPrompt(
        text=text,
        tokens=tokens,
        starts_in_thinking=ends_inside_thinking(text, think_open, think_close),
        # prompt-cache landmarks (engine/cache/boundary.py); `messages` still hold the sentinels
        system_end=system_end(tokenizer, messages, tools, kwargs, tokens),
        message_offsets=tuple(encoded.true_offset(offset) for offset in message_offsets(rendered, messages)),
        message_roles=tuple(str(message.get("role")) for message in messages),
    )
