from dataclasses import dataclass, field

import pytest

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.tools import HERMES
from support.streaming import coalesce, every_chunking, parse_chunks

WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
WEATHER_CALL = ToolCall("get_weather", {"city": "Paris"})
TIME = '<tool_call>\n{"name": "get_time", "arguments": "{\\"tz\\": \\"CET\\"}"}\n</tool_call>'
TIME_CALL = ToolCall("get_time", {"tz": "CET"})


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: list[ReplyEvent]
    options: dict = field(default_factory=dict)


CASES = [
    Case("plain text", "Hello, world!", [TextPiece("Hello, world!")]),
    Case("inner whitespace kept", "a  \n\n b\tc", [TextPiece("a  \n\n b\tc")]),
    Case("surrounding whitespace stripped", "\n\n  Hi there \n", [TextPiece("Hi there")]),
    Case(
        "think split",
        "<think>\nLet me think.\nStill thinking.\n</think>\n\nThe answer is 4.",
        [ThinkingPiece("Let me think.\nStill thinking."), TextPiece("The answer is 4.")],
    ),
    Case(
        "thinking disabled strips the thinking",
        "<think>\nLet me think.\n</think>\n\nThe answer is 4.",
        [TextPiece("The answer is 4.")],
        {"emit_thinking": False},
    ),
    Case("empty thinking makes no block", "<think>\n\n</think>\n\nHi", [TextPiece("Hi")]),
    Case(
        "starts in thinking",
        "reasoning here\n</think>\n\nDone.",
        [ThinkingPiece("reasoning here"), TextPiece("Done.")],
        {"starts_in_thinking": True},
    ),
    Case(
        "starts in thinking, thinking disabled",
        "reasoning here\n</think>\n\nDone.",
        [TextPiece("Done.")],
        {"starts_in_thinking": True, "emit_thinking": False},
    ),
    Case(
        "unterminated thinking",
        "<think>still going </thi",
        [ThinkingPiece("still going </thi")],
    ),
    Case(
        "custom think markers",
        "[THINK]hmm[/THINK]ok",
        [ThinkingPiece("hmm"), TextPiece("ok")],
        {"think_open": "[THINK]", "think_close": "[/THINK]"},
    ),
    Case("lookalike: comparison", "a < b and b <= c", [TextPiece("a < b and b <= c")]),
    Case("lookalike: partial marker at the end", "ends with <thin", [TextPiece("ends with <thin")]),
    Case("lookalike: other tag", "use <thing> here", [TextPiece("use <thing> here")]),
    Case("lookalike: partial tool marker at the end", "see <tool_ca", [TextPiece("see <tool_ca")]),
    Case("stray close tag is text", "a </think> b", [TextPiece("a </think> b")]),
    Case("hermes tool call", WEATHER, [WEATHER_CALL]),
    Case("two tool calls", WEATHER + "\n" + TIME + "\n", [WEATHER_CALL, TIME_CALL]),
    Case(
        "text then tool call",
        "Let me check.\n\n" + WEATHER,
        [TextPiece("Let me check."), WEATHER_CALL],
    ),
    Case(
        "thinking, text, tool call",
        "<think>\nNeed weather.\n</think>\n\nChecking.\n" + WEATHER,
        [ThinkingPiece("Need weather."), TextPiece("Checking."), WEATHER_CALL],
    ),
    Case("whitespace-only text before a call is dropped", "\n \n" + WEATHER, [WEATHER_CALL]),
    Case(
        "text after a tool call is still emitted",
        WEATHER + "\n\nDone.",
        [WEATHER_CALL, TextPiece("Done.")],
    ),
    Case(
        "unterminated tool call with complete json",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',
        [WEATHER_CALL],
    ),
    Case(
        "unterminated tool call with half a close tag",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_',
        [WEATHER_CALL],
    ),
    Case(
        "unterminated tool call with incomplete json stays text",
        'Hi <tool_call>{"name": "f", "argu',
        [TextPiece('Hi <tool_call>{"name": "f", "argu')],
    ),
    Case(
        "bad json in a tool call stays text",
        "Before\n<tool_call>{not json}</tool_call> after",
        [TextPiece("Before\n<tool_call>{not json}</tool_call> after")],
    ),
    Case(
        "bad call between good ones",
        WEATHER + "<tool_call>oops</tool_call>" + TIME,
        [WEATHER_CALL, TextPiece("<tool_call>oops</tool_call>"), TIME_CALL],
    ),
    Case(
        "tool markers are text without a tool format",
        WEATHER,
        [TextPiece(WEATHER)],
        {"tool_format": None},
    ),
    Case(
        "tool call inside thinking is thinking",
        "<think>maybe " + WEATHER + "</think>ok",
        [ThinkingPiece("maybe " + WEATHER), TextPiece("ok")],
    ),
]


def parse(chunks: list[str], options: dict) -> tuple[list[ReplyEvent], ReplyParser]:
    return parse_chunks(chunks, **({"emit_thinking": True, "tool_format": HERMES} | options))



@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_events_do_not_depend_on_chunking(case: Case):
    for chunks in every_chunking(case.text):
        events, _ = parse(chunks, case.options)
        assert coalesce(events) == case.expected, chunks
        assert all(not isinstance(e, (TextPiece, ThinkingPiece)) or e.text for e in events)


@pytest.mark.parametrize(
    "text,calls", [("Hello", 0), (WEATHER, 1), (WEATHER + TIME + " bye", 2), ("<tool_call>x</tool_call>", 0)]
)
def test_tool_calls_seen(text, calls):
    _, parser = parse([text], {})
    assert parser.tool_calls_seen == calls


def test_text_is_emitted_as_soon_as_it_is_safe():
    parser = ReplyParser(emit_thinking=True, tool_format=HERMES)
    assert parser.feed("<think>\nHmm, let") == [ThinkingPiece("Hmm, let")]
    assert parser.feed(" me see</th") == [ThinkingPiece(" me see")]
    assert parser.feed("ink>\n\nThe answer") == [TextPiece("The answer")]
    assert parser.feed(" is <") == [TextPiece(" is")]
    assert parser.feed("b>4</b> <tool") == [TextPiece(" <b>4</b>")]
    assert parser.feed("_call>") == []
    assert parser.feed('{"name": "f"}</tool_call>') == [ToolCall("f", {})]
    assert parser.finish() == []
