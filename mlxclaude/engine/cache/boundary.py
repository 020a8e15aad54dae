"""Where things are in a rendered prompt: the end of the system+tools prefix, and where each message starts.

No mlx here: only the tokenizer's chat template and encoder.
"""

from __future__ import annotations

import hashlib
import json
import threading
from bisect import bisect_right
from collections import OrderedDict
from typing import Any, Optional, Sequence

from mlxclaude.engine.cache.trie import common_prefix_length
from mlxclaude.engine.special_tokens import encode_rendered

_MEMO_SIZE = 8
_memo: "OrderedDict[tuple[int, str], list[int]]" = OrderedDict()
_memo_lock = threading.Lock()


def leading_system_count(messages: Sequence[dict[str, Any]]) -> int:
    count = 0
    for message in messages:
        if message.get("role") != "system":
            break
        count += 1
    return count


def system_prefix_tokens(tokenizer: Any, messages: Sequence[dict[str, Any]], tools: Optional[list[dict[str, Any]]],
                         template_kwargs: dict[str, Any]) -> Optional[list[int]]:
    """The tokens of the leading system messages and the tools, rendered before an empty user message.

    Its common prefix with the real prompt is the part every conversation with this system prompt and
    these tools shares (mlx-lm's server finds its "system" segment the same way). Memoised: Claude Code
    sends the same system prompt and tools on every turn.

    `messages` and `tools` are the template-ready ones render_chat passes, special-token strings already replaced
    by sentinels (engine/special_tokens.py): encoded the same way as the prompt, so the common prefix is right.
    """
    count = leading_system_count(messages)
    if count == 0 and not tools:
        return None
    head = [dict(message) for message in messages[:count]]
    key_text = json.dumps([head, tools or [], template_kwargs], sort_keys=True, default=str)
    key = (id(tokenizer), hashlib.sha256(key_text.encode()).hexdigest())
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    try:
        text = tokenizer.apply_chat_template(head + [{"role": "user", "content": ""}], tools=tools or None,
                                             add_generation_prompt=False, tokenize=False, **template_kwargs)
    except Exception:  # a template that insists on other shapes: no system checkpoint for it
        return None
    tokens = encode_rendered(tokenizer, text).tokens
    with _memo_lock:
        _memo[key] = tokens
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return tokens


def system_end(tokenizer: Any, messages: Sequence[dict[str, Any]], tools: Optional[list[dict[str, Any]]],
               template_kwargs: dict[str, Any], prompt_tokens: Sequence[int]) -> Optional[int]:
    """Token index where the system+tools prefix ends in `prompt_tokens` (None when there is none)."""
    head = system_prefix_tokens(tokenizer, messages, tools, template_kwargs)
    if not head:
        return None
    end = common_prefix_length(head, prompt_tokens)
    return end if 0 < end < len(prompt_tokens) else None


def _needle(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str) and content.strip():
        return content.strip()[:80]
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning.strip():
        return reasoning.strip()[:80]
    for call in message.get("tool_calls") or ():
        name = (call.get("function") or {}).get("name")
        if name:
            return name
    return ""


def message_offsets(text: str, messages: Sequence[dict[str, Any]]) -> tuple[int, ...]:
    """Character offset in `text` where each message's content shows up (searched in order).

    A message whose text cannot be found (empty, or rewritten by the template) gets the previous offset.
    """
    offsets: list[int] = []
    position = 0
    for message in messages:
        needle = _needle(message)
        found = text.find(needle, position) if needle else -1
        if found >= 0:
            position = found
        offsets.append(position)
    return tuple(offsets)


def message_at(offsets: Sequence[int], char_offset: int) -> Optional[int]:
    """Index of the message whose rendered text contains `char_offset` (None before the first message)."""
    if not offsets:
        return None
    index = bisect_right(list(offsets), char_offset) - 1
    return index if index >= 0 else None
