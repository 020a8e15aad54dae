import pytest

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.tools import (
    FORMATS_BY_NAME,
    GEMMA,
    GENERIC,
    GLM,
    HARMONY,
    HERMES,
    LLAMA3,
    MISTRAL,
    QWEN3_CODER,
    detect_tool_format,
    parse_hermes,
)

WRITE = {"type": "function", "function": {"name": "Write", "parameters": {"type": "object", "properties": {
    "file_path": {"type": "string"}, "content": {"type": "string"}, "n": {"type": "integer"},
    "flag": {"type": "boolean"}, "items": {"type": "array"}}}}}


@pytest.mark.parametrize(
    "body,expected",
    [
        ('{"name": "f", "arguments": {"a": 1}}', [ToolCall("f", {"a": 1})]),
        ('\n  {"name": "f", "arguments": {"a": 1}}\n', [ToolCall("f", {"a": 1})]),
        ('{"name": "f", "arguments": "{\\"a\\": 1}"}', [ToolCall("f", {"a": 1})]),
        ('{"name": "f", "parameters": {"a": 1}}', [ToolCall("f", {"a": 1})]),
        ('{"name": "f"}', [ToolCall("f", {})]),
        ('{"name": "f", "arguments": null}', [ToolCall("f", {})]),
        ('{"name": "f", "arguments": ""}', [ToolCall("f", {})]),
        ('[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"b": [1]}}]',
         [ToolCall("f", {}), ToolCall("g", {"b": [1]})]),
        ('{"name": "f", "arguments": {"a": 1}', None),
        ('{"name": "f", "arguments": {}}\n{"name": "g"}', [ToolCall("f", {}), ToolCall("g", {})]),
        ('{"name": "f", "arguments": {}} trailing', None),
        ('{"arguments": {}}', None),
        ('{"name": "", "arguments": {}}', None),
        ('{"name": "f", "arguments": [1, 2]}', None),
        ('{"name": "f", "arguments": "not json"}', None),
        ('"just a string"', None),
        ("[]", None),
        ("", None),
    ],
)
def test_parse_hermes(body, expected):
    assert parse_hermes(body) == expected


QWEN25 = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}{%- for tool in tools %}{{ tool | tojson }}{%- endfor %}"
    "{%- endif %}{%- for message in messages %}{%- if message.tool_calls %}{%- for tool_call in message.tool_calls %}"
    "{{- '<tool_call>\\n{\"name\": \"' }}{{- tool_call.name }}{{- '\\n</tool_call>' }}{%- endfor %}{%- endif %}"
    "{%- if message.role == 'tool' %}<tool_response>{{ message.content }}</tool_response>{%- endif %}{%- endfor %}"
)
QWEN3_CODER_TEMPLATE = (
    "{%- if tools %}<tools>{%- endif %}{%- for tool_call in message.tool_calls %}"
    "{{- '\\n<tool_call>\\n<function=' + tool_call.name + '>\\n' }}{{- '<parameter=' + args_name + '>\\n' }}{%- endfor %}"
)
GLM45 = ("[gMASK]<sop>{% if tools %}<tools>{% endif %}{% for tc in m.tool_calls %}<tool_call>{{ tc.name }}"
         "<arg_key>{{ k }}</arg_key>{% endfor %}")
MISTRAL_V3 = "{%- if tools %}[AVAILABLE_TOOLS]{%- endif %}{%- if message.tool_calls %}[TOOL_CALLS] [{%- endif %}"
LLAMA31 = ("<|start_header_id|>system<|end_header_id|>{%- if tools %}{%- endif %}{%- if 'tool_calls' in message %}"
           "<|python_tag|>{%- endif %}{%- if message.role == 'ipython' %}{%- endif %}")
GPT_OSS = ("{%- if tools %}# Tools{%- endif %}{%- if 'tool_calls' in message %}<|start|>assistant to=functions."
           "{{ name }}<|channel|>commentary json<|message|>{{ args }}<|call|>{%- endif %}")
SMOLLM3 = "{%- if xml_tools or tools %}<tools>{{ xml_tools }}</tools> <tool_call>{\"name\": ...}</tool_call>{%- endif %}"
SMOLLM2 = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>{% endfor %}"
GEMMA3 = "{{ bos_token }}{%- for message in loop_messages -%}<start_of_turn>{{ role }}\n{%- endfor -%}"


@pytest.mark.parametrize(
    "template,expected",
    [
        (None, GENERIC),
        ("", GENERIC),
        (SMOLLM2, GENERIC),
        (GEMMA3, GEMMA),
        (QWEN25, HERMES),
        (QWEN3_CODER_TEMPLATE, QWEN3_CODER),
        (GLM45, GLM),
        (MISTRAL_V3, MISTRAL),
        (LLAMA31, LLAMA3),
        (GPT_OSS, HARMONY),
        ("<|start_header_id|>{{ message['content'] }}", GENERIC),  # Llama 3.0: no tools
    ],
    ids=["none", "empty", "smollm2", "gemma3", "qwen2.5", "qwen3-coder", "glm", "mistral", "llama3.1", "gpt-oss",
         "llama3.0"],
)
def test_detect_tool_format(template, expected):
    assert detect_tool_format(template) is expected


def test_a_template_that_shows_tools_but_cannot_render_calls_gets_text_history():
    fmt = detect_tool_format(SMOLLM3)
    assert fmt.name == "hermes" and not fmt.native_history and not fmt.prompted


@pytest.mark.parametrize("name", sorted(FORMATS_BY_NAME))
def test_override_picks_the_named_format(name):
    assert detect_tool_format(QWEN25, override=name) is FORMATS_BY_NAME[name]


def test_unknown_override_is_an_error():
    with pytest.raises(ValueError, match="unknown tool format 'nope'"):
        detect_tool_format(QWEN25, override="nope")


@pytest.mark.parametrize("fmt", list(FORMATS_BY_NAME.values()), ids=list(FORMATS_BY_NAME))
def test_every_family_reads_back_what_it_renders(fmt):
    call = ToolCall("Write", {"file_path": "/tmp/a b.txt", "content": "line 1\nline \"2\" </tool_call> ```",
                              "n": 3, "flag": True, "items": [1, {"k": None}]})
    text = fmt.render(call)
    parser = ReplyParser(emit_thinking=True, tool_format=fmt, tools=[WRITE])
    events = parser.feed(text) + parser.finish()
    assert events == [call], text
