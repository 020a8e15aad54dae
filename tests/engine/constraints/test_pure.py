"""The pure parts: request plans, the marker watch and its completer sets, schema loosening."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlxclaude.engine.constraints.markers import JsonPosition, MarkerWatch, TokenTexts, borders
from mlxclaude.engine.constraints.plan import plan_for
from mlxclaude.engine.constraints.schemas import ANY_OBJECT, SchemaChecker
from mlxclaude.protocol.chat import ChatRequest, ToolChoice

TOOL = {"type": "function", "function": {"name": "Bash", "parameters": {"type": "object"}}}


def chat(choice=ToolChoice(), tools=(TOOL,), **kw) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=list(tools),
                       tool_choice=choice, **kw)


@pytest.mark.parametrize("choice, mode, only, single", [
    (ToolChoice("auto"), "watch", None, False),
    (ToolChoice("auto", disable_parallel_tool_use=True), "watch", None, True),
    (ToolChoice("any"), "forced", None, False),
    (ToolChoice("tool", "Bash", True), "forced", "Bash", True),
    (ToolChoice("tool", "Nope"), "watch", None, False),  # an unknown tool can't be forced
    (ToolChoice("none"), "forbid", None, False),
])
def test_plans_follow_tool_choice(choice, mode, only, single):
    plan = plan_for(chat(choice), has_tool_format=True, starts_in_thinking=False)
    assert (plan.mode, plan.only_tool, plan.single_call) == (mode, only, single)


def test_plans_without_tools_json_and_thinking():
    assert plan_for(chat(tools=()), has_tool_format=True, starts_in_thinking=False).mode == "off"
    assert plan_for(chat(), has_tool_format=False, starts_in_thinking=False).mode == "off"
    json_plan = plan_for(chat(json_schema={"type": "object"}), has_tool_format=True, starts_in_thinking=True)
    assert json_plan.mode == "json" and json_plan.close_thinking
    forced = plan_for(chat(ToolChoice("any")), has_tool_format=True, starts_in_thinking=True)
    assert forced.close_thinking


def test_marker_watch_finds_markers_across_tokens_and_skips_thinking():
    watch = MarkerWatch([b"<tool_call>"], think_open=b"<think>", think_close=b"</think>")
    assert watch.feed(b"Let me <to") is None and watch.matched(0) == len(b"<to")
    assert watch.feed(b"ol_call>\n{") == (0, b"\n{")
    thinking = MarkerWatch([b"<tool_call>"], think_open=b"<think>", think_close=b"</think>", thinking=True)
    assert thinking.feed(b"maybe <tool_call> here") is None and thinking.matched(0) == 0
    assert thinking.feed(b"</think>ok <tool_call>") == (0, b"")
    again = MarkerWatch([b"<tool_call>"], think_open=b"<think>", think_close=b"</think>")
    assert again.feed(b"a<think>b<tool_call>c</think>") is None and not again.thinking


MARKERS = [b"<tool_call>", b"[TOOL_CALLS]", "<|tool▁call|>".encode()]


PIECES = [b"a", b" ", b"<", b"<tool", b"_call", b">", b"[TOOL", b"_CALLS]", b"[", b"<|", b"tool", b"\xe2\x96\x81",
          b"call|>", b"<tool_call>", b"x\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_marker_watch_agrees_with_searching_the_whole_text(pieces):
    """Fed piece by piece, the watch reports the first marker of the whole text (and what follows it there), and
    after every piece how much of each marker the text ends with, as searching all the text so far would. A
    token outside `TokenTexts.holding(watch.first)` (what the processor skips the watch for) leaves a watch at
    rest as it was."""
    watch = MarkerWatch(MARKERS)
    may_begin = TokenTexts(PIECES).holding(watch.first)
    seen = b""
    for piece in pieces:
        seen += piece
        skippable = watch.at_rest and PIECES.index(piece) not in may_begin
        found = watch.feed(piece)
        if skippable:
            assert found is None and watch.at_rest
        hits = [(seen.find(marker), index) for index, marker in enumerate(MARKERS) if marker in seen]
        if hits:
            at, index = min(hits)
            assert found == (index, seen[at + len(MARKERS[index]):])
            return
        assert found is None
        for index, marker in enumerate(MARKERS):
            expected = max((n for n in range(1, len(marker)) if seen.endswith(marker[:n])), default=0)
            assert watch.matched(index) == expected
        if watch.at_rest:
            assert not any(watch.matched(index) for index in range(len(MARKERS)))


def test_completers_split_exact_and_overshooting_tokens():
    texts = TokenTexts([b"<", b"tool", b"_call", b">", b">\n", b"<tool_call>", b"x<tool_call>{", b"hi", b""])
    marker = b"<tool_call>"
    assert texts.completers(marker, 0).exact == (5,)
    assert texts.completers(marker, 0).overshoot == {6: b"{"}
    after = texts.completers(marker, len(b"<tool_call"))
    assert 3 in after.exact and after.overshoot[4] == b"\n"
    assert borders(b"abab", 4) == [4, 2]


def test_json_position_tracks_strings_and_escapes():
    position = JsonPosition()
    position.feed(b'{"a": "x\\"')
    assert position.in_string
    position.feed(b'y"')
    assert not position.in_string


def test_schema_checker_loosens_once_and_caches(caplog):
    calls = []

    def validator(schema, lenient):
        calls.append((schema.get("title"), lenient))
        if schema.get("title") == "bad":
            return "" if lenient else "Unimplemented keys: [\"propertyNames\"]"
        if schema.get("title") == "worse":
            return "nope"
        return ""

    checker = SchemaChecker(validator)
    assert not checker.spec("A", {"title": "ok", "type": "object"}).lenient
    assert checker.spec("B", {"title": "bad", "$schema": "x"}).lenient
    worse = checker.spec("C", {"title": "worse"})
    assert worse.schema == ANY_OBJECT and not worse.lenient
    checker.spec("B", {"title": "bad", "$schema": "x"})
    assert calls.count(("bad", False)) == 1  # cached
    assert checker.spec("D", None).schema == ANY_OBJECT


def test_tool_call_numbers_json_cannot_carry_are_made_finite():
    import json
    import sys

    from mlxclaude.parsing.events import ToolCall
    from mlxclaude.protocol.reply_rules import finite_call

    call = ToolCall("Bash", json.loads('{"timeout": 1e999, "x": [-1e999, 2.5], "n": NaN, "s": "1e999"}'))
    fixed = finite_call(call)
    assert fixed.arguments == {"timeout": sys.float_info.max, "x": [-sys.float_info.max, 2.5], "n": None, "s": "1e999"}
    json.dumps(fixed.arguments, allow_nan=False)
    plain = ToolCall("Bash", {"command": "ls"})
    assert finite_call(plain) is plain
