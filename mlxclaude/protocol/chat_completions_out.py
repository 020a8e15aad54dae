"""The OpenAI front door's replies: an Anthropic message (or its stream events) → a Chat Completions response
(or its chunks). Every target answers in Anthropic's shape; this is the one translation out. Pure."""

from __future__ import annotations

import json
from typing import Any, Optional

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}


def finish_reason(stop_reason: Optional[str]) -> Optional[str]:
    return FINISH_REASONS.get(stop_reason or "", "stop") if stop_reason else None


def token_counts(usage: Optional[dict]) -> tuple[int, int, int]:
    """(prompt, cached, output) tokens of an Anthropic usage: OpenAI's prompt count includes the cached tokens."""
    usage = usage or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    return prompt, cached, int(usage.get("output_tokens") or 0)


def usage_of(usage: Optional[dict]) -> dict[str, Any]:
    prompt, cached, completion = token_counts(usage)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def completion(message: dict[str, Any], *, response_id: str, model: str, created: int) -> dict[str, Any]:
    text, reasoning, calls = [], [], []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    return {"id": response_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": reply, "logprobs": None,
                         "finish_reason": finish_reason(message.get("stop_reason")) or "stop"}],
            "usage": usage_of(message.get("usage"))}


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


class ChunkEncoder:
    """Anthropic stream events in, Chat Completions chunks out (each a dict for one `data:` line)."""

    def __init__(self, *, response_id: str, model: str, created: int, include_usage: bool) -> None:
        self._base = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}  # content block index → tool_calls index
        self._usage: dict[str, Any] = {}
        self._stop: Optional[str] = None

    def _chunk(self, delta: dict[str, Any], finish: Optional[str] = None) -> dict[str, Any]:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def feed(self, name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        if name == "message_start":
            self._usage = dict((data.get("message") or {}).get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if name == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") != "tool_use":
                return []
            index = self._tool_index.setdefault(data.get("index", 0), len(self._tool_index))
            return [self._chunk({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                 "function": {"name": block.get("name"), "arguments": ""}}]})]
        if name == "content_block_delta":
            delta = data.get("delta") or {}
            kind = delta.get("type")
            if kind == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if kind == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
            if kind == "input_json_delta" and data.get("index") in self._tool_index:
                index = self._tool_index[data["index"]]
                return [self._chunk({"tool_calls": [{"index": index,
                                                     "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []
        if name == "message_delta":
            self._usage.update({key: value for key, value in (data.get("usage") or {}).items() if value is not None})
            self._stop = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(self._stop) or "stop")]
        if name == "message_stop" and self._include_usage:
            return [{**self._base, "choices": [], "usage": usage_of(self._usage)}]
        return []
