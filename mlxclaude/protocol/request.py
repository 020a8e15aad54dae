"""Anthropic request → ChatRequest: content blocks flattened into chat-template messages.

Placement rules that matter for tool-calling templates and prefix caching:
- tool_result blocks become `tool` messages placed before the user text of the same turn;
- a `role: "system"` message stays at its position, folded into the user turn as a <system-reminder>;
- consecutive user or assistant turns are merged, tool messages never are;
- a final assistant turn is a prefill and leaves the message list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlxclaude.protocol.canon import canonical_system_text, drop_billing_header
from mlxclaude.protocol.chat import ChatRequest, Sampling, ThinkingMode, ToolChoice, WebSearchTool
from mlxclaude.protocol.content_parts import TEXT_SEPARATOR, Part, image_part, merge_user_content, user_content
from mlxclaude.protocol.documents import pdf_text
from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.server_tools import server_tool_text
from mlxclaude.protocol.wire import (
    ContentBlockParam,
    DocumentBlockParam,
    ImageBlockParam,
    MessageCountTokensParams,
    MessageCreateParams,
    MessageParam,
    MidConversationSystemBlockParam,
    SearchResultBlockParam,
    StrOrContentBlocks,
    TextBlockParam,
    ThinkingBlockParam,
    ThinkingConfigParam,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    UnknownBlockParam,
)

Message = dict[str, Any]

SYSTEM_BLOCK_SEPARATOR = "\n"
REMINDER_OPEN, REMINDER_CLOSE = "<system-reminder>", "</system-reminder>"
EMPTY_INPUT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def to_chat_request(
    params: MessageCreateParams | MessageCountTokensParams,
    *,
    session_id: str | None = None,
    kind: str = "main",
) -> ChatRequest:
    """Build the model-side request; count_tokens params get ChatRequest's generation defaults."""
    conversation = _Conversation()
    for message in params.messages:
        conversation.add(message)
    messages, prefill = conversation.finish()

    system_prompt = _system_prompt(params.system)
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})

    output_format = params.json_output_format
    prompt_fields: dict[str, Any] = dict(
        model=params.model,
        messages=messages,
        tools=_tools(params.tools),
        web_search=_web_search(params.tools),
        tool_choice=_tool_choice(params.tool_choice),
        thinking=_thinking_mode(params.thinking),
        thinking_budget=params.thinking.budget_tokens if params.thinking is not None else None,
        effort=params.output_config.effort if params.output_config is not None else None,
        has_images=conversation.has_images,
        unreadable=tuple(conversation.unreadable),
        json_schema=output_format.json_schema if output_format is not None else None,
        assistant_prefill=prefill,
        session_id=session_id,
        kind=kind,
    )
    if not isinstance(params, MessageCreateParams):
        return ChatRequest(**prompt_fields)
    return ChatRequest(
        **prompt_fields,
        max_tokens=params.max_tokens,
        stop_sequences=tuple(params.stop_sequences or ()),
        sampling=Sampling(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k),
        stream=bool(params.stream),
        user_id=params.metadata.user_id if params.metadata is not None else None,
        omit_thinking=params.thinking is not None and params.thinking.display == "omitted",
    )



# --- top-level options ----------------------------------------------------------------------------------


def _system_prompt(system: str | list[TextBlockParam] | None) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return canonical_system_text(system)
    return SYSTEM_BLOCK_SEPARATOR.join(drop_billing_header([block.text for block in system]))


def _tools(tools: list[ToolParam] | None) -> list[dict[str, Any]]:
    """Custom tools in OpenAI function form; server tools (web_search_…, bash_…) can't run here and are dropped."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema if tool.input_schema is not None else dict(EMPTY_INPUT_SCHEMA),
            },
        }
        for tool in tools or ()
        if tool.is_custom
    ]


def _web_search(tools: list[ToolParam] | None) -> WebSearchTool | None:
    for tool in tools or ():
        if tool.is_web_search:
            return WebSearchTool(name=tool.name, max_uses=tool.max_uses,
                                 allowed_domains=tuple(tool.allowed_domains or ()),
                                 blocked_domains=tuple(tool.blocked_domains or ()))
    return None


def _tool_choice(choice: ToolChoiceParam | None) -> ToolChoice:
    if choice is None:
        return ToolChoice()
    return ToolChoice(
        type=choice.type,
        name=choice.name,
        disable_parallel_tool_use=bool(choice.disable_parallel_tool_use),
    )


def _thinking_mode(thinking: ThinkingConfigParam | None) -> ThinkingMode:
    if thinking is not None and thinking.type == "enabled":
        return "enabled"
    if thinking is not None and thinking.type == "disabled":
        return "disabled"
    return "default"


# --- messages -------------------------------------------------------------------------------------------


def _join(parts: Sequence[str], separator: str = TEXT_SEPARATOR) -> str:
    return separator.join(part for part in parts if part)


def _as_blocks(content: StrOrContentBlocks) -> list[ContentBlockParam]:
    return [TextBlockParam(text=content)] if isinstance(content, str) else list(content)


def as_system_reminder(text: str) -> str:
    """System text placed among the messages, wrapped as Claude Code wraps its own reminders (once)."""
    stripped = text.strip()
    if stripped.startswith(REMINDER_OPEN) and stripped.endswith(REMINDER_CLOSE):
        return stripped
    return f"{REMINDER_OPEN}\n{text}\n{REMINDER_CLOSE}"


def _system_section_text(content: StrOrContentBlocks | None) -> str:
    """Text of a system message or mid_conv_system block; tool_addition/tool_removal and others are ignored."""
    if content is None:
        return ""
    parts: list[str] = []
    for block in _as_blocks(content):
        if isinstance(block, TextBlockParam):
            parts.append(block.text)
        elif isinstance(block, MidConversationSystemBlockParam):
            parts.append(_system_section_text(block.content))
    return _join(parts, SYSTEM_BLOCK_SEPARATOR)


class _Conversation:
    """Accumulates chat-template messages from Anthropic turns, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.has_images = False
        self.unreadable: list[str] = []  # documents that could not be turned into text, and why
        self._tool_names: dict[str, str] = {}
        self._moved_images: list[Part] = []  # images in tool results: they go in the user message after them
        # System text that arrived right after an assistant tool call: it waits until after the tool messages.
        self._pending_reminders: list[str] = []

    def add(self, message: MessageParam) -> None:
        if message.role == "user":
            self._add_user(message.content)
        elif message.role == "assistant":
            self._add_assistant(message.content)
        else:
            self._add_system(message.content)

    def finish(self) -> tuple[list[Message], str]:
        """The messages and the assistant prefill (text of a final assistant turn, removed from the messages)."""
        self._flush_pending_reminders()
        prefill = ""
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
            prefill = self.messages.pop()["content"]  # the reply continues it; a turn of calls stays a turn
        return self.messages, prefill

    # user turns

    def _add_user(self, content: StrOrContentBlocks) -> None:
        tool_messages: list[Message] = []
        items: list[str | Part] = list(self._pending_reminders)
        self._pending_reminders.clear()
        for block in _as_blocks(content):
            if isinstance(block, ToolResultBlockParam):
                tool_messages.append(self._tool_message(block))
            elif isinstance(block, MidConversationSystemBlockParam):
                if text := _system_section_text(block.content):
                    items.append(as_system_reminder(text))
            else:
                items.append(self._user_block(block))
        items, self._moved_images = [*self._moved_images, *items], []
        user = user_content(items)
        if tool_messages:
            self.messages.extend(tool_messages)
            if user:
                self.messages.append({"role": "user", "content": user})
        else:
            self._append_user(user)

    def _append_user(self, content: str | list[Part]) -> None:
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "user":
            last["content"] = merge_user_content(last["content"], content)
        else:
            self.messages.append({"role": "user", "content": content})

    def _tool_message(self, block: ToolResultBlockParam) -> Message:
        text = self._blocks_text(block.content)
        if block.is_error:
            text = f"Error: {text}"
        message: Message = {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}
        if name := self._tool_names.get(block.tool_use_id):
            message["name"] = name
        return message

    def _blocks_text(self, content: StrOrContentBlocks | None) -> str:
        """The text of nested blocks; their images move to the user message that follows."""
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        texts: list[str] = []
        for block in content:
            item = self._user_block(block)
            if isinstance(item, str):
                texts.append(item)
            else:
                self._moved_images.append(item)
        return _join(texts)

    def _user_block(self, block: ContentBlockParam) -> str | Part:
        """What a user-side block contributes: its text, or an image part."""
        if isinstance(block, TextBlockParam):
            return block.text
        if isinstance(block, ImageBlockParam):
            self.has_images = True
            return image_part(block)
        if isinstance(block, DocumentBlockParam):
            return self._document_text(block)
        if isinstance(block, SearchResultBlockParam):
            return _join([block.title, block.source, *(part.text for part in block.content)], "\n")
        return ""

    def _document_text(self, block: DocumentBlockParam) -> str:
        source = block.source
        name = f"document {block.title!r}" if block.title else "document"
        body = ""
        if source.type == "text":
            body = source.data or ""
        elif source.type == "content":
            body = self._blocks_text(source.content)
        elif source.type == "base64":
            try:
                body = pdf_text(source.data or "", where=name)
            except ApiError as error:  # an Anthropic-compatible backend may still read it: the others refuse
                self.unreadable.append(error.message)
        else:
            self.unreadable.append(f"{name}: a PDF by {source.type} cannot be fetched here; send its data as "
                                   "base64 (as Claude Code's Read tool does)")
        return _join([block.title or "", block.context or "", body], "\n") if body else ""

    # assistant turns

    def _add_assistant(self, content: StrOrContentBlocks) -> None:
        self._flush_pending_reminders()
        texts: list[str] = []
        thoughts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in _as_blocks(content):
            if isinstance(block, TextBlockParam):
                texts.append(block.text)
            elif isinstance(block, ThinkingBlockParam):
                thoughts.append(block.thinking)
            elif isinstance(block, ToolUseBlockParam):
                self._tool_names[block.id] = block.name
                tool_calls.append(
                    {"type": "function", "id": block.id, "function": {"name": block.name, "arguments": block.input}}
                )
            elif isinstance(block, UnknownBlockParam) and (text := server_tool_text(block.model_dump())):
                texts.append(text)  # a search the server ran in an earlier turn, as text the model can read

        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            texts = [last["content"], *texts]
            thoughts = [last.get("reasoning_content", ""), *thoughts]
            tool_calls = [*last.get("tool_calls", []), *tool_calls]
            self.messages.pop()

        message: Message = {"role": "assistant", "content": _join(texts)}
        if any(thoughts):
            message["reasoning_content"] = _join(thoughts)
        if tool_calls:
            message["tool_calls"] = tool_calls
        self.messages.append(message)

    # system turns inside `messages`

    def _add_system(self, content: StrOrContentBlocks) -> None:
        text = _system_section_text(content)
        if not text:
            return
        reminder = as_system_reminder(text)
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
            self._pending_reminders.append(reminder)
        else:
            self._append_user(reminder)

    def _flush_pending_reminders(self) -> None:
        if self._pending_reminders:
            self.messages.append({"role": "user", "content": _join(self._pending_reminders)})
            self._pending_reminders.clear()
