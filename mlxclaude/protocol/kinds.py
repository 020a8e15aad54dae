"""What kind of request this is, for logs and (later) cache policy: main turn or a side request."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from mlxclaude.protocol.chat import ChatRequest


def classify(chat: ChatRequest) -> str:
    if chat.max_tokens <= 1:
        return "probe"
    if chat.json_schema is not None and not chat.tools:
        return "title"
    if chat.tools:
        return "main"
    return "side"


def session_id_of(headers: Mapping[str, str], metadata_user_id: Any = None) -> Optional[str]:
    header = headers.get("x-claude-code-session-id") or headers.get("session-id")  # Claude Code's; Codex's
    if header:
        return header
    if isinstance(metadata_user_id, str) and '"session_id"' in metadata_user_id:
        import json

        try:
            value = json.loads(metadata_user_id).get("session_id")
        except (ValueError, AttributeError, RecursionError):  # anything but Claude Code's JSON object
            return None
        return value if isinstance(value, str) else None
    return None
