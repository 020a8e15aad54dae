"""Chat template rendering: ChatRequest -> prompt text and token ids."""

from __future__ import annotations

import json
from typing import Any, Optional

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.protocol.chat import ChatRequest


class RenderError(Exception):
    """The model's chat template rejected the conversation."""


def json_schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with only a JSON object (no prose, no code fences) that matches this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )


def messages_for_template(chat: ChatRequest) -> list[dict[str, Any]]:
    messages = [dict(message) for message in chat.messages]
    if chat.json_schema is not None:
        instruction = json_schema_instruction(chat.json_schema)
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = f"{messages[0]['content']}\n\n{instruction}"
        else:
            messages.insert(0, {"role": "system", "content": instruction})
    return messages


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


def render_chat(tokenizer: Any, chat: ChatRequest, think_open: Optional[str], think_close: Optional[str]) -> RenderedPrompt:
    try:
        text = tokenizer.apply_chat_template(
            messages_for_template(chat),
            tools=chat.tools or None,
            add_generation_prompt=True,
            tokenize=False,
            **template_kwargs(chat),
        )
    except Exception as exc:  # jinja2 TemplateError, or a template's raise_exception()
        raise RenderError(f"the model's chat template rejected this conversation: {exc}") from exc
    text += chat.assistant_prefill
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return RenderedPrompt(
        text=text,
        tokens=list(tokens),
        starts_in_thinking=ends_inside_thinking(text, think_open, think_close),
    )
