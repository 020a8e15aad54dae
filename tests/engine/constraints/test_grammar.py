"""Grammar building: each family's grammar compiles in llguidance and accepts exactly the valid calls."""

from __future__ import annotations

import json

import pytest

from mlxclaude.engine.constraints.grammar import BODIES, ToolSpec, call_grammar, constrained_markers, json_output_grammar, literal_for
from mlxclaude.engine.constraints.schemas import SchemaChecker
from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools import FORMATS_BY_NAME

WEATHER = ToolSpec("get_weather", {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]},
}, "required": ["city"], "additionalProperties": False})
BASH = ToolSpec("Bash", {"type": "object", "properties": {"command": {"type": "string"},
                                                          "timeout": {"type": "number"}},
                         "required": ["command"], "additionalProperties": False})
TOOLS = [WEATHER, BASH]
GOOD = ToolCall("get_weather", {"city": "Paris", "days": 3, "unit": "c"})
UNKNOWN = ToolCall("get_wether", {"city": "Paris"})
MISSING = ToolCall("get_weather", {"days": 3})
WRONG_TYPE = ToolCall("get_weather", {"city": "Paris", "days": "three"})


def body(family: str, call: ToolCall, marker: int = 0) -> str:
    """The family's own text for `call`, minus its open marker."""
    fmt = FORMATS_BY_NAME[family]
    text = fmt.render(call)
    open_ = fmt.markers[marker].open
    assert text.startswith(open_), text
    return text[len(open_):]


SPECIALS: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _tiny_specials(specials):
    """The tiny tokenizer has <tool_call> etc. as single special tokens: grammars must say so."""
    SPECIALS.clear()
    SPECIALS.update(specials)


def grammar(family: str, marker: int = 0, tools=TOOLS, specials=None, **options) -> str:
    fmt = FORMATS_BY_NAME[family]
    m = fmt.markers[marker]
    result = call_grammar(fmt.name, m.open, m.close, tools, specials=SPECIALS if specials is None else specials,
                          **options)
    assert result is not None
    return result


@pytest.mark.parametrize("family", ["hermes", "generic", "qwen3_coder", "glm", "gemma"])
def test_each_family_accepts_its_own_rendering_of_a_valid_call(family, matches):
    assert matches(grammar(family), body(family, GOOD))


@pytest.mark.parametrize("family", ["hermes", "generic", "qwen3_coder", "glm", "gemma"])
@pytest.mark.parametrize("bad", [UNKNOWN, MISSING, WRONG_TYPE], ids=["unknown-tool", "missing-required", "wrong-type"])
def test_each_family_rejects_invalid_calls(family, bad, matches):
    assert not matches(grammar(family), body(family, bad))


def test_llama3_bare_json_with_parameters(matches):
    g = grammar("llama3")
    assert matches(g, json.dumps({"name": "get_weather", "parameters": {"city": "Paris"}}))
    assert not matches(g, json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}))
    assert not matches(g, json.dumps({"name": "get_weather", "parameters": {}}))


def test_mistral_json_list_and_v11_form(matches, specials):
    g = grammar("mistral")
    call = {"name": "Bash", "arguments": {"command": "ls"}}
    assert matches(g, json.dumps([call])) and matches(g, json.dumps([call, call]))
    assert not matches(g, json.dumps([{"name": "Bash", "arguments": {}}]))
    # v11 tokenizers have [ARGS] as a special token: NAME[ARGS]{…}, the marker by token id
    v11 = grammar("mistral", specials={**specials, "[ARGS]": specials["<tool_call>"]})
    assert "<[" in v11 and '"Bash"' in v11
    assert matches(v11, 'Bash<tool_call>{"command": "ls"}')


def test_harmony_call_after_the_recipient(matches):
    g = grammar("harmony")
    assert matches(g, 'get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>')
    assert matches(g, 'Bash<|message|>{"command": "ls"}<|call|>')
    history = FORMATS_BY_NAME["harmony"].render(GOOD)  # the template's form: recipient, then the channel
    assert matches(g, history[history.index(" to=functions.") + len(" to=functions."):])
    assert not matches(g, 'get_weather<|message|>{"town":"Paris"}<|call|>')


def test_qwen3_coder_unwrapped_function_marker(matches):
    g = grammar("qwen3_coder", marker=1)
    text = FORMATS_BY_NAME["qwen3_coder"].render(GOOD)
    inner = text[text.index("<function=") + len("<function="):text.index("</tool_call>")].rstrip()
    assert matches(g, inner)


def test_xml_string_values_are_free_text_up_to_the_close_tag(matches):
    code = ToolCall("Bash", {"command": "cat <<EOF\n<a href='x'>\n</para>\nEOF"})
    assert matches(grammar("qwen3_coder"), body("qwen3_coder", code))
    assert matches(grammar("glm"), body("glm", code))


def test_gemma_extra_tool_call_marker_is_hermes_json(matches):
    assert matches(grammar("gemma", marker=1), body("hermes", GOOD))


def test_special_token_markers_are_referenced_by_id(specials, matches):
    assert literal_for(specials)("</tool_call>") == f"<[{specials['</tool_call>']}]>"
    g = grammar("hermes", specials=specials)
    assert f"<[{specials['</tool_call>']}]>" in g
    assert matches(g, body("hermes", GOOD))  # the tokenizer writes </tool_call> as its one token


def test_forced_grammar_starts_with_the_open_marker_and_can_close_thinking(specials, matches):
    g = grammar("hermes", specials=specials, start="forced")
    assert matches(g, FORMATS_BY_NAME["hermes"].render(GOOD))
    assert not matches(g, "Sure! " + FORMATS_BY_NAME["hermes"].render(GOOD))
    thinking = grammar("hermes", specials=specials, start="forced", think_close="</think>")
    assert matches(thinking, "</think>\n\n" + FORMATS_BY_NAME["hermes"].render(GOOD))
    only_bash = grammar("hermes", tools=[BASH], specials=specials, start="forced")
    assert not matches(only_bash, FORMATS_BY_NAME["hermes"].render(GOOD))


def test_after_a_call_only_blank_space_and_more_calls(specials, matches):
    g = grammar("hermes", specials=specials, start="more")
    call = FORMATS_BY_NAME["hermes"].render(GOOD)
    assert matches(g, "") and matches(g, "\n" + call) and matches(g, "\n" + call + "\n" + call)
    assert not matches(g, "Done.")
    assert call_grammar("llama3", "<|python_tag|>", "", TOOLS, start="more") is None  # runs to the end


def test_json_output_grammar(matches, specials):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    g = json_output_grammar(schema)
    assert matches(g, '{"title": "Fix the bug"}') and matches(g, '{"title":"x"}')
    assert not matches(g, '{"name": "x"}') and not matches(g, 'Title: x')
    assert matches(json_output_grammar(schema, think_close="</think>", specials=specials), '</think>\n{"title": "x"}')


def test_markers_without_a_grammar_are_left_alone():
    assert constrained_markers("llama3", ["<|python_tag|>"]) == [0]
    assert constrained_markers("nobody", ["<x>"]) == []
    families = {family for family, _ in BODIES}
    assert families == {fmt.name for fmt in FORMATS_BY_NAME.values()}


def test_claude_code_schemas_compile_and_real_calls_match(cc_tools, cc_default_tools, specials, matches):
    checker = SchemaChecker()
    every = checker.specs(cc_default_tools + cc_tools)
    assert {"Bash", "Read", "Edit", "Write", "Grep", "Glob", "TaskCreate", "Agent"} <= {s.name for s in every}
    lenient = {s.name for s in every if s.lenient}
    assert "TaskCreate" in lenient  # propertyNames: compiled leniently, not dropped
    g = call_grammar("hermes", "<tool_call>", "</tool_call>", every, specials=specials)
    calls = [
        ToolCall("Bash", {"command": "ls -la", "timeout": 1000, "description": "List files"}),
        ToolCall("Read", {"file_path": "/repo/README.md", "offset": 10, "limit": 20}),
        ToolCall("Edit", {"file_path": "/a.py", "old_string": "x = 1\n", "new_string": "x = 2\n", "replace_all": True}),
        ToolCall("Write", {"file_path": "/a.txt", "content": "line\n\t\"quoted\" é"}),
        ToolCall("Grep", {"pattern": "def \\w+", "output_mode": "content", "-n": True}),
        ToolCall("Glob", {"pattern": "**/*.py", "path": "/repo"}),
    ]
    for call in calls:
        assert matches(g, body("hermes", call)), call
    assert not matches(g, body("hermes", ToolCall("Read", {"file_path": "/a", "limit": 0})))  # exclusiveMinimum
    assert not matches(g, body("hermes", ToolCall("Grep", {"pattern": "x", "output_mode": "lines"})))  # enum
    assert not matches(g, body("hermes", ToolCall("Edit", {"file_path": "/a"})))  # required
    # llguidance keeps the schema's property order (documented): description may not come before timeout
    assert not matches(g, body("hermes", ToolCall("Bash", {"command": "ls", "description": "d", "timeout": 1})))


@pytest.mark.parametrize("family", ["qwen3_coder", "glm"])
def test_xml_tools_without_declared_parameters_take_any(family, matches):
    loose = [ToolSpec("anything", {"type": "object"}), ToolSpec("other", {"type": "object"})]
    call = ToolCall("anything", {"x": "1", "y-z": "two\nlines"})
    assert matches(grammar(family, tools=loose), body(family, call))
