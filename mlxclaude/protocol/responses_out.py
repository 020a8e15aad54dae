"""The OpenAI front door's Responses replies: an Anthropic message (or its stream events) → a Response object (or
its event sequence: response.created, output_item.added, output_text.delta, function_call_arguments.delta,
output_item.done, response.completed…). Thinking becomes reasoning items with a summary; the server's web
searches become web_search_call items. Pure."""

from __future__ import annotations

import json
import uuid
from typing import Any, Optional

from mlxclaude.protocol.chat_completions_out import token_counts


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def usage_of(usage: Optional[dict]) -> dict[str, Any]:
    prompt, cached, output = token_counts(usage)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + output}


def response_object(*, response_id: str, model: str, created: int, output: list[dict[str, Any]],
                    stop_reason: Optional[str], usage: Optional[dict], status: Optional[str] = None) -> dict[str, Any]:
    incomplete = stop_reason in ("max_tokens", "model_context_window_exceeded")
    return {"id": response_id, "object": "response", "created_at": created, "model": model,
            "status": status or ("incomplete" if incomplete else "completed"),
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "error": None, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": usage_of(usage) if usage is not None else None}


def message_item(text: str, item_id: Optional[str] = None) -> dict[str, Any]:
    return {"type": "message", "id": item_id or new_id("msg"), "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def reasoning_item(text: str, item_id: Optional[str] = None) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id or new_id("rs"), "summary": [{"type": "summary_text", "text": text}]}


def call_item(block: dict[str, Any], arguments: str, item_id: Optional[str] = None) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id or new_id("fc"), "call_id": block.get("id"),
            "name": block.get("name"), "arguments": arguments, "status": "completed"}


def search_item(block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "web_search_call", "id": new_id("ws"), "status": "completed",
            "action": {"type": "search", "query": (block.get("input") or {}).get("query", "")}}


def output_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole Anthropic message's content as Response output items."""
    output: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            output.append(message_item(block["text"]))
        elif kind == "thinking" and block.get("thinking"):
            output.append(reasoning_item(block["thinking"]))
        elif kind == "tool_use":
            output.append(call_item(block, json.dumps(block.get("input") or {})))
        elif kind == "server_tool_use":
            output.append(search_item(block))
    return output


def whole_response(message: dict[str, Any], *, response_id: str, model: str, created: int) -> dict[str, Any]:
    return response_object(response_id=response_id, model=model, created=created, output=output_of(message),
                           stop_reason=message.get("stop_reason"), usage=message.get("usage"))


class ResponseEvents:
    """Anthropic stream events in, Responses stream events out (each a dict with its `type`). `output` holds the
    finished items, for response.completed and for previous_response_id."""

    def __init__(self, *, response_id: str, model: str, created: int) -> None:
        self.response_id, self.model, self.created = response_id, model, created
        self.output: list[dict[str, Any]] = []
        self._open: dict[int, dict[str, Any]] = {}  # content block index → the item being built
        self._usage: dict[str, Any] = {}
        self._stop: Optional[str] = None
        self._sequence = 0

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._sequence += 1
        return {"type": kind, "sequence_number": self._sequence, **fields}

    def _response(self, status: str, output: list[dict[str, Any]], usage: Optional[dict] = None) -> dict[str, Any]:
        return response_object(response_id=self.response_id, model=self.model, created=self.created, output=output,
                               stop_reason=self._stop, usage=usage, status=status)

    def failed(self, error_type: str, message: str) -> dict[str, Any]:
        response = self._response("failed", self.output)
        response["error"] = {"code": error_type, "message": message}
        return self._event("response.failed", response=response)

    def feed(self, name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        if name == "message_start":
            self._usage = dict((data.get("message") or {}).get("usage") or {})
            response = self._response("in_progress", [])
            return [self._event("response.created", response=response),
                    self._event("response.in_progress", response=response)]
        if name == "content_block_start":
            return self._start(data.get("index", 0), data.get("content_block") or {})
        if name == "content_block_delta":
            return self._delta(data.get("index", 0), data.get("delta") or {})
        if name == "content_block_stop":
            return self._stop_block(data.get("index", 0))
        if name == "message_delta":
            self._usage.update({key: value for key, value in (data.get("usage") or {}).items() if value is not None})
            self._stop = (data.get("delta") or {}).get("stop_reason")
            return []
        if name == "message_stop":
            response = self._response("", self.output, self._usage)
            response["status"] = "incomplete" if response["incomplete_details"] else "completed"
            kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
            return [self._event(kind, response=response)]
        return []

    def _start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind, position = block.get("type"), len(self.output) + len(self._open)
        item: dict[str, Any]
        if kind == "text":
            item = {"type": "message", "id": new_id("msg"), "role": "assistant", "status": "in_progress", "content": []}
            self._open[index] = {"item": item, "text": [], "position": position}
            return [self._event("response.output_item.added", output_index=position, item=item),
                    self._event("response.content_part.added", item_id=item["id"], output_index=position,
                                content_index=0, part={"type": "output_text", "text": "", "annotations": []})]
        if kind == "thinking":
            item = {"type": "reasoning", "id": new_id("rs"), "summary": []}
            self._open[index] = {"item": item, "text": [], "position": position}
            return [self._event("response.output_item.added", output_index=position, item=item),
                    self._event("response.reasoning_summary_part.added", item_id=item["id"], output_index=position,
                                summary_index=0, part={"type": "summary_text", "text": ""})]
        if kind == "tool_use":
            item = {"type": "function_call", "id": new_id("fc"), "call_id": block.get("id"), "name": block.get("name"),
                    "arguments": "", "status": "in_progress"}
            self._open[index] = {"item": item, "text": [], "position": position, "block": block}
            return [self._event("response.output_item.added", output_index=position, item=item)]
        if kind == "server_tool_use":
            self._open[index] = {"item": None, "text": [], "position": position, "block": block}
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        open_ = self._open.get(index)
        if open_ is None:
            return []
        kind, item = delta.get("type"), open_["item"]
        if kind == "text_delta" and item is not None:
            open_["text"].append(delta.get("text", ""))
            return [self._event("response.output_text.delta", item_id=item["id"], output_index=open_["position"],
                                content_index=0, delta=delta.get("text", ""))]
        if kind == "thinking_delta" and item is not None:
            open_["text"].append(delta.get("thinking", ""))
            return [self._event("response.reasoning_summary_text.delta", item_id=item["id"],
                                output_index=open_["position"], summary_index=0, delta=delta.get("thinking", ""))]
        if kind == "input_json_delta":
            open_["text"].append(delta.get("partial_json", ""))
            if item is not None:
                return [self._event("response.function_call_arguments.delta", item_id=item["id"],
                                    output_index=open_["position"], delta=delta.get("partial_json", ""))]
        return []

    def _stop_block(self, index: int) -> list[dict[str, Any]]:
        open_ = self._open.pop(index, None)
        if open_ is None:
            return []
        item, text, position = open_["item"], "".join(open_["text"]), open_["position"]
        events: list[dict[str, Any]] = []
        if item is None:  # the server's web search: one finished item
            block = dict(open_["block"])
            if text:
                block["input"] = json.loads(text)
            done = search_item(block)
        elif item["type"] == "message":
            done = message_item(text, item["id"])
            part = done["content"][0]
            events += [self._event("response.output_text.done", item_id=item["id"], output_index=position,
                                   content_index=0, text=text),
                       self._event("response.content_part.done", item_id=item["id"], output_index=position,
                                   content_index=0, part=part)]
        elif item["type"] == "reasoning":
            done = reasoning_item(text, item["id"])
            events += [self._event("response.reasoning_summary_text.done", item_id=item["id"], output_index=position,
                                   summary_index=0, text=text),
                       self._event("response.reasoning_summary_part.done", item_id=item["id"],
                                   output_index=position, summary_index=0, part=done["summary"][0])]
        else:
            arguments = text or json.dumps(open_["block"].get("input") or {})
            done = call_item(open_["block"], arguments, item["id"])
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=position, arguments=arguments))
        self.output.append(done)
        events.append(self._event("response.output_item.done", output_index=position, item=done))
        return events
