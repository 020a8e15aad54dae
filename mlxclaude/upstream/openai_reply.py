"""OpenAI Chat Completions reply (one body, or the parsed `data:` chunks of a stream) → reply events. Pure.

Events are the local engine's (parsing.events): ThinkingPiece from `reasoning_content` (or vLLM's newer
`reasoning`), TextPiece from `content`, ToolCall from `tool_calls`, each call through `checked_call`.
Upstream call ids are ignored: the protocol layer assigns its own.

Rules shared with the local engine:
- the turn ends with its tool calls: text (and reasoning) after the first call is dropped, and so is
  whitespace-only text right before it;
- a call that names no declared tool, or whose arguments can't be made a JSON object, becomes text;
- whenever a call survives, stop_reason is tool_use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.tools.catalog import ToolCatalog
from mlxclaude.parsing.tools.coerce import coerce_arguments
from mlxclaude.parsing.tools.repair import repair_call_body
from mlxclaude.protocol.usage import Usage
from mlxclaude.upstream.upstream_errors import error_from_stream_chunk

_FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "end_turn",
}


@dataclass(frozen=True)
class ReplyEnd:
    stop_reason: str            # end_turn | max_tokens | stop_sequence | tool_use
    stop_sequence: str | None
    usage: Usage                # input_tokens excludes cached; cache_read_input_tokens = cached prompt tokens


def custom_tools(tools: Any) -> list[dict[str, Any]]:
    """The tools the client runs, in the typed request's function form or Anthropic's; server tools (a `type`
    such as web_search_…) run nowhere upstream."""
    return [tool for tool in tools or () if isinstance(tool, dict)
            and (tool.get("type") == "function" or (isinstance(tool.get("name"), str)
                                                    and tool.get("type") in (None, "custom")))]


def _catalog(tools: Any) -> ToolCatalog:
    return tools if isinstance(tools, ToolCatalog) else ToolCatalog(custom_tools(tools))


def checked_call(name: str, arguments_text: Any, tools: list[dict] | ToolCatalog) -> ReplyEvent:
    """A ToolCall under its declared name with arguments coerced to the tool's schema, or the raw call as text.

    Arguments are parsed with json.loads, else repaired (parsing.tools.repair); a JSON string holding the
    object (arguments encoded twice) is unwrapped. Unknown tool names and arguments that aren't an object
    give a TextPiece, never a broken tool_use."""
    catalog = _catalog(tools)
    declared = catalog.resolve(name) if isinstance(name, str) else None
    arguments = _arguments(arguments_text)
    if declared is None or arguments is None:
        return TextPiece(_raw_call(name, arguments_text))
    return ToolCall(name=declared, arguments=coerce_arguments(arguments, catalog.schemas[declared]))


def _arguments(text: Any) -> dict[str, Any] | None:
    if isinstance(text, dict):  # some servers (Ollama) send the object itself
        return text
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return repair_call_body(text)
    if isinstance(value, str):
        return repair_call_body(value)
    return value if isinstance(value, dict) else None


def _raw_call(name: Any, arguments: Any) -> str:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return f'{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {arguments or "{}"}}}'


def usage_from_openai(usage: Any) -> Usage:
    """Anthropic usage from an OpenAI `usage` object: cached prompt tokens are counted apart from input_tokens."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))  # DeepSeek's spelling
    cached = min(cached, prompt)
    return Usage(input_tokens=prompt - cached, output_tokens=_int(usage.get("completion_tokens")),
                 cache_read_input_tokens=cached, cache_creation_input_tokens=0)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _stop(finish_reason: Any, matched: Any, called: bool) -> tuple[str, str | None]:
    if called:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched  # vLLM names the stop string it matched (an int is a stop token)
    reason = _FINISH_REASONS.get(finish_reason, "end_turn")
    return ("end_turn" if reason == "tool_use" else reason), None


def _thinking_text(holder: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        if isinstance(holder.get(key), str) and holder[key]:
            return holder[key]
    return ""


def _first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def from_openai_completion(body: dict, *, tools: list[dict],
                           stop_sequences: tuple[str, ...] = ()) -> tuple[list[ReplyEvent], ReplyEnd]:
    """Events and end of a non-streaming Chat Completions body."""
    if isinstance(body, dict) and ("error" in body or body.get("object") == "error"):
        raise error_from_stream_chunk(body)
    catalog = _catalog(tools)
    choice = _first_choice(body)
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    events: list[ReplyEvent] = []
    if thinking := _thinking_text(message):
        events.append(ThinkingPiece(thinking))
    calls = [_call_of(item) for item in message.get("tool_calls") or () if isinstance(item, dict)]
    if isinstance(message.get("function_call"), dict):  # the legacy single-call form
        calls.append((message["function_call"].get("name"), message["function_call"].get("arguments")))
    checked = [checked_call(name, arguments, catalog) for name, arguments in calls]
    content = message.get("content")
    if isinstance(content, str) and content and (content.strip() or not calls):
        events.append(TextPiece(content))
    events += checked
    called = any(isinstance(event, ToolCall) for event in checked)
    stop_reason, stop_sequence = _stop(choice.get("finish_reason"), choice.get("stop_reason"), called)
    return events, ReplyEnd(stop_reason, stop_sequence, usage_from_openai(body.get("usage")))


def _call_of(item: dict[str, Any]) -> tuple[Any, Any]:
    function = item.get("function") if isinstance(item.get("function"), dict) else {}
    return function.get("name"), function.get("arguments")


class _PendingCall:
    def __init__(self, index: Any, call_id: Any) -> None:
        self.index = index
        self.id = call_id
        self.name = ""
        self.arguments: list[str] = []
        self.emitted = False

    def add(self, delta: dict[str, Any]) -> None:
        function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name != self.name:  # a name may come in pieces; some servers repeat it
            self.name += name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            self.arguments.append(arguments)
        elif isinstance(arguments, dict):
            self.arguments.append(json.dumps(arguments, ensure_ascii=False))

    def text(self) -> str:
        return "".join(self.arguments)

    def looks_complete(self) -> bool:
        try:
            return isinstance(json.loads(self.text()), dict)
        except (json.JSONDecodeError, RecursionError):
            return False


class OpenAIStreamReader:
    """Feed each parsed `data:` chunk of a Chat Completions stream, then call `finish` once.

    Text and reasoning deltas come out at once (whitespace-only text is held until it is followed by more
    text, since whitespace before a tool call is dropped). Tool-call deltas are gathered by `index`; a
    call comes out when a later index starts and its arguments already parse (parallel calls may be
    interleaved, so one that doesn't parse yet waits), and every call left comes out when finish_reason
    arrives or at `finish`, in index order. A chunk carrying an "error" raises the mapped ApiError."""

    def __init__(self, *, tools: list[dict], stop_sequences: tuple[str, ...] = ()) -> None:
        self.catalog = _catalog(tools)
        self.stop_sequences = stop_sequences
        self.finish_reason: str | None = None  # None at finish(): the stream ended without one
        self.matched_stop: Any = None
        self.usage = Usage()
        self.usage_seen = False
        self.called = False  # a ToolCall was emitted
        self._calls: list[_PendingCall] = []
        self._held_space = ""

    def feed(self, chunk: dict) -> list[ReplyEvent]:
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk or chunk.get("object") == "error":
            raise error_from_stream_chunk(chunk)
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_from_openai(chunk["usage"])
            self.usage_seen = True
        choice = _first_choice(chunk)
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        events: list[ReplyEvent] = []
        if not self._calls:
            if thinking := _thinking_text(delta):
                events.append(ThinkingPiece(thinking))
            if isinstance(delta.get("content"), str):
                events += self._text(delta["content"])
        for item in delta.get("tool_calls") or ():
            if isinstance(item, dict):
                events += self._tool_delta(item)
        if isinstance(delta.get("function_call"), dict):  # the legacy single-call form
            events += self._tool_delta({"index": 0, "function": delta["function_call"]})
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            self.matched_stop = choice.get("stop_reason")
            events += self._emit_calls(everything=True)
        return events

    def finish(self) -> tuple[list[ReplyEvent], ReplyEnd]:
        events = self._emit_calls(everything=True)
        if not self._calls and self._held_space:
            events.append(TextPiece(self._held_space))
        self._held_space = ""
        stop_reason, stop_sequence = _stop(self.finish_reason, self.matched_stop, self.called)
        return events, ReplyEnd(stop_reason, stop_sequence, self.usage)

    def _text(self, text: str) -> list[ReplyEvent]:
        if not text:
            return []
        if not text.strip():
            self._held_space += text
            return []
        text, self._held_space = self._held_space + text, ""
        return [TextPiece(text)]

    def _tool_delta(self, item: dict[str, Any]) -> list[ReplyEvent]:
        self._held_space = ""
        index, call_id = item.get("index"), item.get("id")
        call = self._find(index, call_id)
        events: list[ReplyEvent] = []
        if call is None:
            events = self._emit_calls(everything=False)
            call = _PendingCall(index if index is not None else len(self._calls), call_id)
            self._calls.append(call)
        if not call.emitted:
            call.add(item)
        return events

    def _find(self, index: Any, call_id: Any) -> _PendingCall | None:
        if index is not None:
            return next((call for call in self._calls if call.index == index), None)
        if call_id is not None and all(call.id != call_id for call in self._calls):
            return None  # no index: a new id starts a new call
        return self._calls[-1] if self._calls else None

    def _emit_calls(self, *, everything: bool) -> list[ReplyEvent]:
        """Calls not yet emitted, in order; unless `everything`, only up to the first that may still grow."""
        events: list[ReplyEvent] = []
        for call in sorted((call for call in self._calls if not call.emitted),
                           key=lambda call: call.index if isinstance(call.index, int) else 0):
            if not everything and not call.looks_complete():
                break
            call.emitted = True
            event = checked_call(call.name, call.text(), self.catalog)
            self.called = self.called or isinstance(event, ToolCall)
            events.append(event)
        return events
