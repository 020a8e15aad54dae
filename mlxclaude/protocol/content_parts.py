"""A user message's content when it holds images: text and image parts in order (the typed request keeps them,
so a model that sees gets them and one that does not reads a placeholder). Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.protocol.wire import ImageBlockParam

Part = dict[str, Any]  # {"type": "text", "text"} or {"type": "image", "media_type", "data"} / {"type": "image", "url"}
TEXT_SEPARATOR = "\n\n"


def _join(parts: list[str]) -> str:
    return TEXT_SEPARATOR.join(part for part in parts if part)


def image_part(block: ImageBlockParam) -> Part:
    source = block.source if isinstance(block.source, dict) else {}
    if source.get("type") == "base64" and source.get("data"):
        return {"type": "image", "media_type": source.get("media_type") or "image/png", "data": source["data"]}
    if source.get("type") == "url" and source.get("url"):
        return {"type": "image", "url": source["url"]}
    return {"type": "image"}  # a file id names a file on Anthropic's side


def user_content(items: list[str | Part]) -> str | list[Part]:
    """A string when there is text only; else text and image parts in order (adjacent texts joined)."""
    if all(isinstance(item, str) for item in items):
        return _join([item for item in items if isinstance(item, str)])
    parts: list[Part] = []
    pending: list[str] = []
    for item in items:
        if isinstance(item, str):
            pending.append(item)
            continue
        if text := _join(pending):
            parts.append({"type": "text", "text": text})
        pending = []
        parts.append(item)
    if text := _join(pending):
        parts.append({"type": "text", "text": text})
    return parts


def merge_user_content(first: str | list[Part], second: str | list[Part]) -> str | list[Part]:
    def items(content: str | list[Part]) -> list[str | Part]:
        if isinstance(content, str):
            return [content]
        return [part["text"] if part["type"] == "text" else part for part in content]

    return user_content([*items(first), *items(second)])


IMAGE_PLACEHOLDER = "[image omitted: this model cannot see images]"


def without_images(chat: ChatRequest, placeholder: str = IMAGE_PLACEHOLDER) -> tuple[ChatRequest, int]:
    """`chat` for a model that cannot see: each image becomes `placeholder` text in its place. Returns the
    request and how many images were replaced."""
    replaced = 0

    def text_only(content: Any) -> Any:
        nonlocal replaced
        if isinstance(content, str):
            return content
        items: list[str | Part] = []
        for part in content:
            if part["type"] == "image":
                replaced += 1
                items.append(placeholder)
            else:
                items.append(part["text"] if part["type"] == "text" else part)
        return user_content(items)

    messages = [{**message, "content": text_only(message["content"])} if "content" in message else message
                for message in chat.messages]
    return replace(chat, messages=messages, has_images=False), replaced
