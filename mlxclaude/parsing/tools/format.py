"""What a tool-call format is: the markers around a call, how a body parses, how history renders.

Kept apart from the family modules so that they can import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Optional

from mlxclaude.parsing.events import ToolCall

BodyParser = Callable[[str], Optional[list[ToolCall]]]
CallRenderer = Callable[[ToolCall], str]
ResultRenderer = Callable[[str, Optional[str]], str]  # (result text, tool name) -> text of a user turn
SystemPrompt = Callable[[list[dict]], str]  # tools -> the system-prompt section describing them
BareScope = Literal["reply", "line"]
Splitter = Literal["markers", "harmony"]
BodyKind = Literal["auto", "code", "xml"]


@dataclass(frozen=True)
class CallMarker:
    """One way a call can start: `open`, a body, then `close` ("" when the call runs to the end of the reply).

    `keep_open`: the open marker is part of the body and is handed to `parse` (e.g. `<function=` for an
    unwrapped Qwen3-Coder call). `quotes`: quote characters inside which `close` doesn't count when the
    body is JSON or code (so `"</tool_call>"` inside a JSON string never ends the call). `body_kind`:
    "auto" decides JSON/code vs XML-ish from the body's first character (see scan.CloseScanner).
    `repair`: a lenient second try when `parse` fails (None: the generic JSON repair).
    """

    open: str
    close: str
    parse: BodyParser
    keep_open: bool = False
    quotes: str = '"'
    body_kind: BodyKind = "auto"
    repair: Optional[BodyParser] = None


@dataclass(frozen=True)
class ToolFormat:
    """How one model family writes a tool call, and what its chat template needs.

    open/close/parse: the main marker pair (`open` body `close`); `parse(body)` returns None when the body
    is not a valid call. `close` is "" for formats that run to the end of the reply (Mistral, Llama 3).
    extra_markers: other ways the family starts a call (checked with the main one, earliest wins).
    bare: a call may also be written as bare JSON without markers — at the start of the reply ("reply":
      the whole reply must be calls, to known tools) or at the start of any line ("line", Llama 3).
    render_call: the family's own text for a call (history as text, examples, system prompts).
    prompted: the chat template has no tool support; tools go in a system-prompt section and history
      is rendered as text (GENERIC, GEMMA).
    native_history: the chat template renders `tool_calls` and `tool` messages itself.
    splitter: "harmony" for gpt-oss, whose whole reply is in channels (its own splitter).
    template_markers: strings whose presence in a chat template identifies the family (all must appear).
    quotes, body_kind, repair: as for CallMarker, for the main marker.
    detect: replaces `template_markers` when the family needs a finer test.
    render_result: how a tool result reads when history is rendered as text (default: <tool_response>).
    system_prompt: for prompted formats, the system-prompt section that lists the tools.
    """

    open: str
    close: str
    parse: BodyParser
    name: str = ""
    extra_markers: tuple[CallMarker, ...] = ()
    bare: Optional[BareScope] = None
    render_call: Optional[CallRenderer] = None
    prompted: bool = False
    native_history: bool = True
    splitter: Splitter = "markers"
    template_markers: tuple[str, ...] = ()
    quotes: str = '"'
    body_kind: BodyKind = "auto"
    repair: Optional[BodyParser] = None
    detect: Optional[Callable[[str], bool]] = None
    render_result: Optional[ResultRenderer] = None
    system_prompt: Optional[SystemPrompt] = None

    @property
    def markers(self) -> tuple[CallMarker, ...]:
        main = CallMarker(self.open, self.close, self.parse, quotes=self.quotes, body_kind=self.body_kind,
                          repair=self.repair)
        return (main, *self.extra_markers)

    @property
    def open_markers(self) -> tuple[str, ...]:
        return tuple(marker.open for marker in self.markers)

    def is_used_by(self, chat_template: str) -> bool:
        if self.detect is not None:
            return self.detect(chat_template)
        needles = self.template_markers or (self.open,)
        return all(needle in chat_template for needle in needles)

    def render(self, call: ToolCall) -> str:
        """The text this family writes for `call`."""
        if self.render_call is not None:
            return self.render_call(call)
        import json

        body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
        return f"{self.open}\n{body}\n{self.close}"

    def __repr__(self) -> str:  # the callables make the default repr unreadable
        return f"ToolFormat({self.name!r})"


def as_arguments(value: Any) -> dict[str, Any] | None:
    """Arguments as a JSON object: a dict as is, a JSON-encoded object decoded, None/"" as {}."""
    import json

    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None
