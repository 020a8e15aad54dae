"""gpt-oss "Harmony" messages: the whole reply is in channels, tool calls are messages to a recipient.

    <|channel|>analysis<|message|>…thinking…<|end|>
    <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>
    <|start|>assistant<|channel|>final<|message|>…text…<|return|>

The recipient may also come before the channel (`<|start|>assistant to=functions.x<|channel|>commentary json`,
the way the chat template writes history). Splitting is done by parsing.harmony.HarmonySplitter; this
module holds the markers, the header parser and the format object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools.calls import is_tool_name
from mlxclaude.parsing.tools.format import ToolFormat, as_arguments

START, CHANNEL, MESSAGE, CONSTRAIN = "<|start|>", "<|channel|>", "<|message|>", "<|constrain|>"
END, CALL, RETURN = "<|end|>", "<|call|>", "<|return|>"
HEADER_STARTS = (START, CHANNEL)
TERMINATORS = (END, CALL, RETURN)
ALL_MARKERS = (START, CHANNEL, MESSAGE, CONSTRAIN, END, CALL, RETURN)
FUNCTIONS_PREFIX = "functions."
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")


@dataclass(frozen=True)
class Header:
    channel: str = ""
    recipient: str = ""

    @property
    def tool_name(self) -> str:
        name = self.recipient
        return name[len(FUNCTIONS_PREFIX):] if name.startswith(FUNCTIONS_PREFIX) else name


def parse_header(header: str) -> Header:
    """What comes before `<|message|>`: `<|start|>assistant`, `<|channel|>NAME`, ` to=RECIPIENT`, content type."""
    recipient = _RECIPIENT.search(header)
    channel = ""
    at = header.find(CHANNEL)
    if at >= 0:
        words = _SPECIAL.sub(" ", header[at + len(CHANNEL):]).split()
        channel = words[0] if words and not words[0].startswith("to=") else ""
    return Header(channel=channel, recipient=recipient.group(1) if recipient else "")


def parse_arguments(content: str) -> dict | None:
    """A call's JSON arguments (strict), or None."""
    text = content.strip()
    for terminator in TERMINATORS:
        if text.endswith(terminator):
            text = text[: -len(terminator)].rstrip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return as_arguments(value) if not isinstance(value, dict) else value


def repair_arguments(content: str) -> dict | None:
    from mlxclaude.parsing.tools.repair import repair_json

    value = repair_json(content)
    return value if isinstance(value, dict) else None


def parse_harmony(body: str) -> list[ToolCall] | None:
    """The body after ` to=functions.`: `NAME <|constrain|>json<|message|>{...}` (or `NAME<|channel|>…`)."""
    name_end = len(body)
    for stop in (" ", "<|", "\n"):
        at = body.find(stop)
        if 0 <= at < name_end:
            name_end = at
    name = body[:name_end]
    at = body.find(MESSAGE)
    if not is_tool_name(name) or at < 0:
        return None
    arguments = parse_arguments(body[at + len(MESSAGE):])
    return None if arguments is None else [ToolCall(name, arguments)]


def render_harmony(call: ToolCall) -> str:
    arguments = json.dumps(call.arguments, ensure_ascii=False)
    return f"{START}assistant to={FUNCTIONS_PREFIX}{call.name}{CHANNEL}commentary json{MESSAGE}{arguments}{CALL}"


HARMONY = ToolFormat(
    " to=functions.",
    CALL,
    parse_harmony,
    name="harmony",
    render_call=render_harmony,
    splitter="harmony",
    template_markers=(CHANNEL, MESSAGE),
)


