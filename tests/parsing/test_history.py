"""Tool history adapted per family, rendered through templates that enforce what the real ones enforce."""

import copy
import json
import re

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tiny_model import CHAT_TEMPLATE as QWEN25_TEMPLATE

from mlxclaude.engine.render import messages_for_template, render_chat, template_tools
from mlxclaude.parsing.tools import GEMMA, GENERIC, GLM, HARMONY, HERMES, LLAMA3, MISTRAL, QWEN3_CODER, ToolFormat
from mlxclaude.parsing.tools.history import adapt_history, mistral_tool_call_id
from mlxclaude.protocol.chat import ChatRequest

TOOLS = [{"type": "function", "function": {"name": "Read", "description": "Read a file", "parameters": {
    "type": "object", "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["file_path"]}}}]


def call(call_id: str, path: str, arguments_as_string: bool = False) -> dict:
    arguments = {"file_path": path, "limit": 10}
    return {"type": "function", "id": call_id,
            "function": {"name": "Read", "arguments": json.dumps(arguments) if arguments_as_string else arguments}}


CONVERSATION = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Read both files."},
    {"role": "assistant", "content": "Reading them.", "reasoning_content": "Two reads needed.",
     "tool_calls": [call("toolu_01AAA", "a.py"), call("toolu_01BBB", "b.py", arguments_as_string=True)]},
    {"role": "tool", "tool_call_id": "toolu_01AAA", "name": "Read", "content": "print('a')"},
    {"role": "tool", "tool_call_id": "toolu_01BBB", "name": "Read", "content": "print('b')"},
    {"role": "user", "content": "<system-reminder>\nBe brief.\n</system-reminder>"},
    {"role": "assistant", "content": "Both print a letter."},
    {"role": "user", "content": "Thanks. Now read c.py."},
    {"role": "assistant", "content": "", "tool_calls": [call("toolu_01CCC", "c.py")]},
    {"role": "tool", "tool_call_id": "toolu_01CCC", "name": "Read", "content": "print('c')"},
]

# The parts of the real templates that decide what messages must look like (they raise where the real ones do).
LLAMA31 = """{{- bos_token }}{%- for message in messages %}
{%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- elif 'tool_calls' in message %}
{%- if not message.tool_calls|length == 1 %}{{- raise_exception("This model only supports single tool-calls at once!") }}{%- endif %}
{%- set tool_call = message.tool_calls[0].function %}
{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
{{- '{"name": "' + tool_call.name + '", ' }}{{- '"parameters": ' }}{{- tool_call.arguments | tojson }}{{- "}" }}{{- "<|eot_id|>" }}
{%- elif message.role == "tool" or message.role == "ipython" %}
{{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}{{- message.content }}{{- "<|eot_id|>" }}
{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"""

MISTRAL_V3 = """{%- if messages[0]["role"] == "system" %}{%- set system_message = messages[0]["content"] %}
{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}
{%- set ns = namespace() %}{%- set ns.index = 0 %}
{%- for message in loop_messages %}
{%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
{%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
{{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
{%- endif %}{%- set ns.index = ns.index + 1 %}{%- endif %}{%- endfor %}
{{- bos_token }}{%- for message in loop_messages %}
{%- if message["role"] == "user" %}{{- "[INST] " + message["content"] + "[/INST]" }}
{%- elif message.tool_calls is defined and message.tool_calls is not none %}{{- "[TOOL_CALLS] [" }}
{%- for tool_call in message.tool_calls %}{%- set out = tool_call.function|tojson %}{{- out[:-1] }}
{%- if not tool_call.id is defined or tool_call.id|length != 9 %}
{{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}{%- endif %}
{{- ', "id": "' + tool_call.id + '"}' }}{%- if not loop.last %}{{- ", " }}{%- else %}{{- "]" + eos_token }}{%- endif %}
{%- endfor %}
{%- elif message["role"] == "assistant" %}{{- " " + message["content"]|trim + eos_token}}
{%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
{{- '[TOOL_RESULTS] {"content": ' + message.content|string + ", " }}
{%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
{{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}{%- endif %}
{{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
{%- else %}{{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
{%- endif %}{%- endfor %}"""

GPT_OSS = """{%- set last_tool_call = namespace(name=none) %}{%- set loop_messages = messages %}
{%- for message in loop_messages -%}
{%- if message.role == 'assistant' -%}
{%- if "tool_calls" in message %}
{%- set future_final_message = namespace(found=false) %}
{%- for future_message in loop_messages[loop.index:] %}
{%- if future_message.role == 'assistant' and "tool_calls" not in future_message %}{%- set future_final_message.found = true %}{%- endif %}
{%- endfor %}
{%- set tool_call = message.tool_calls[0] %}{%- if tool_call.function %}{%- set tool_call = tool_call.function %}{%- endif %}
{%- if message.content and message.thinking %}
{{- raise_exception("Cannot pass both content and thinking in an assistant message with tool calls! Put the analysis message in one or the other, but not both.") }}
{%- elif message.content and not future_final_message.found %}{{- "<|start|>assistant<|channel|>analysis<|message|>" + message.content + "<|end|>" }}
{%- elif message.thinking and not future_final_message.found %}{{- "<|start|>assistant<|channel|>analysis<|message|>" + message.thinking + "<|end|>" }}
{%- endif %}
{{- "<|start|>assistant to=" }}{{- "functions." + tool_call.name + "<|channel|>commentary " }}
{{- (tool_call.content_type if tool_call.content_type is defined else "json") + "<|message|>" }}
{{- tool_call.arguments|tojson }}{{- "<|call|>" }}{%- set last_tool_call.name = tool_call.name %}
{%- else %}{{- "<|start|>assistant<|channel|>final<|message|>" + message.content + "<|end|>" }}{%- endif %}
{%- elif message.role == 'tool' -%}
{%- if last_tool_call.name is none %}{{- raise_exception("Message has tool role, but there was no previous assistant message with a tool call!") }}{%- endif %}
{{- "<|start|>functions." + last_tool_call.name }}{{- " to=assistant<|channel|>commentary<|message|>" + message.content|tojson + "<|end|>" }}
{%- elif message.role == 'user' -%}{{- "<|start|>user<|message|>" + message.content + "<|end|>" }}
{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"""

QWEN3_CODER_TEMPLATE = """{%- for message in messages %}
{%- if message.role == "assistant" and message.tool_calls is defined and message.tool_calls %}
{{- '<|im_start|>assistant\\n' + message.content }}
{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
{{- '\\n<tool_call>\\n<function=' + tool_call.name + '>\\n' }}
{%- for args_name, args_value in tool_call.arguments|items %}{{- '<parameter=' + args_name + '>\\n' }}
{%- set args_value = args_value | tojson | safe if args_value is mapping or (args_value is sequence and args_value is not string) else args_value | string %}
{{- args_value }}{{- '\\n</parameter>\\n' }}{%- endfor %}{{- '</function>\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}
{%- elif message.role == "tool" %}{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}
{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""

GLM45 = """[gMASK]<sop>{%- for m in messages %}
{%- if m.role == 'assistant' %}<|assistant|>{{ m.content }}
{%- if m.tool_calls %}{% for tc in m.tool_calls %}{%- if tc.function %}{%- set tc = tc.function %}{%- endif %}
{{ '\\n<tool_call>' + tc.name }}{% set _args = tc.arguments %}{% for k, v in _args.items() %}
<arg_key>{{ k }}</arg_key>
<arg_value>{{ v | tojson if v is not string else v }}</arg_value>{% endfor %}
</tool_call>{% endfor %}{% endif %}
{%- elif m.role == 'tool' %}<|observation|><tool_response>{{ m.content }}</tool_response>
{%- else %}<|{{ m.role }}|>{{ m.content }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|assistant|>{%- endif %}"""

GEMMA3 = """{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = "" -%}{%- set loop_messages = messages -%}{%- endif -%}
{%- for message in loop_messages -%}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}{%- endif -%}
{%- if (message['role'] == 'assistant') -%}{%- set role = "model" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}
{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}{{ message['content'] | trim }}<end_of_turn>
{% endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\\n'}}{%- endif -%}"""

SMOLLM2 = """{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""


def render(template: str, messages: list[dict], tools=None) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])

    def raise_exception(message):
        raise jinja2.TemplateError(message)

    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, tools=tools, add_generation_prompt=True,
                                            bos_token="<s>", eos_token="</s>")


FAMILIES = [
    (HERMES, QWEN25_TEMPLATE, ['<tool_call>\n{"name": "Read", "arguments": {"file_path": "b.py", "limit": 10}}',
                               "<tool_response>\nprint('b')\n</tool_response>"]),
    (QWEN3_CODER, QWEN3_CODER_TEMPLATE, ["<function=Read>\n<parameter=file_path>\nb.py\n</parameter>\n<parameter=limit>\n10"]),
    (GLM, GLM45, ["<tool_call>Read<arg_key>file_path</arg_key>\n<arg_value>b.py</arg_value>", "<arg_value>10</arg_value>",
                  "<|observation|><tool_response>print('b')</tool_response>"]),
    (LLAMA3, LLAMA31, ['{"name": "Read", "parameters": {"file_path": "b.py", "limit": 10}}<|eot_id|>'
                       "<|start_header_id|>ipython<|end_header_id|>\n\nprint('b')"]),
    (MISTRAL, MISTRAL_V3, ['[TOOL_CALLS] [{"name": "Read", "arguments": {"file_path": "a.py", "limit": 10}, "id": "'
                           + mistral_tool_call_id("toolu_01AAA") + '"}, {"name": "Read", "arguments": {"file_path": "b.py"']),
    (HARMONY, GPT_OSS, ['<|start|>assistant to=functions.Read<|channel|>commentary json<|message|>{"file_path": "b.py", "limit": 10}<|call|>'
                        '<|start|>functions.Read to=assistant<|channel|>commentary<|message|>"print(\'b\')"<|end|>']),
    (GEMMA, GEMMA3, ['```tool_code\nRead(file_path="b.py", limit=10)\n```', "```tool_output\nprint('b')\n```"]),
    (GENERIC, SMOLLM2, ['<tool_call>\n{"name": "Read", "arguments": {"file_path": "b.py", "limit": 10}}\n</tool_call>',
                        '<tool_response name="Read">\nprint(\'b\')\n</tool_response>', "# Tools", "## Read"]),
]


@pytest.mark.parametrize("fmt,template,expected", FAMILIES, ids=[fmt.name for fmt, _, _ in FAMILIES])
def test_history_renders_through_the_family_template(fmt: ToolFormat, template: str, expected: list[str]):
    before = copy.deepcopy(CONVERSATION)
    messages = adapt_history(CONVERSATION, fmt, tools=TOOLS)
    assert CONVERSATION == before  # the input is not modified
    text = render(template, messages, tools=None if fmt.prompted else TOOLS)
    for snippet in expected:
        assert snippet in text, text
    assert adapt_history(CONVERSATION, fmt, tools=TOOLS) == messages  # deterministic (prefix caching)


@pytest.mark.parametrize("fmt", [HERMES, QWEN3_CODER, GLM], ids=lambda f: f.name)
def test_template_native_families_keep_the_messages_with_dict_arguments(fmt):
    messages = adapt_history(CONVERSATION, fmt, tools=TOOLS)
    assert [m["role"] for m in messages] == [m["role"] for m in CONVERSATION]
    arguments = [c["function"]["arguments"] for m in messages for c in m.get("tool_calls", [])]
    assert arguments == [{"file_path": "a.py", "limit": 10}, {"file_path": "b.py", "limit": 10},
                         {"file_path": "c.py", "limit": 10}]
    assert messages[2]["reasoning_content"] == "Two reads needed."


def test_llama3_gets_one_call_per_message_each_followed_by_its_result():
    messages = adapt_history(CONVERSATION, LLAMA3)
    shape = [(m["role"], len(m.get("tool_calls", [])), m.get("tool_call_id")) for m in messages]
    assert shape[1:7] == [("user", 0, None), ("assistant", 0, None), ("assistant", 1, None),
                          ("tool", 0, "toolu_01AAA"), ("assistant", 1, None), ("tool", 0, "toolu_01BBB")]
    assert messages[2]["content"] == "Reading them."
    assert all(len(m.get("tool_calls", [])) <= 1 for m in messages)


def test_mistral_ids_and_alternation():
    messages = adapt_history(CONVERSATION, MISTRAL)
    ids = [c["id"] for m in messages for c in m.get("tool_calls", [])]
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", i) for i in ids) and len(set(ids)) == 3
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == ids
    assert mistral_tool_call_id("toolu_01AAA") == ids[0]  # stable across requests
    assert mistral_tool_call_id("abcDEF123") == "abcDEF123"  # already valid: kept
    folded = messages[4]
    assert folded["role"] == "tool" and folded["content"].endswith("Be brief.\n</system-reminder>")


def test_harmony_thinking_field_and_single_calls():
    messages = adapt_history(CONVERSATION, HARMONY)
    assert not any("reasoning_content" in m for m in messages)
    first_call = next(m for m in messages if m.get("tool_calls"))
    assert first_call["thinking"] == "Two reads needed.\n\nReading them." and not first_call["content"]
    for m in messages:
        assert len(m.get("tool_calls", [])) <= 1
        assert not (m.get("tool_calls") and m.get("content") and m.get("thinking"))


def test_text_history_for_templates_without_tool_support():
    messages = adapt_history(CONVERSATION, GENERIC, tools=TOOLS)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("You are a coding agent.\n\n# Tools")
    assert not any("tool_calls" in m for m in messages)
    assert messages[2]["content"].startswith("Reading them.\n\n<tool_call>")
    assert messages[3]["content"].count("<tool_response") == 2 and "Be brief." in messages[3]["content"]


def test_no_system_message_gets_one_for_the_tools():
    messages = adapt_history([{"role": "user", "content": "hi"}], GENERIC, tools=TOOLS)
    assert messages[0]["role"] == "system" and "## Read" in messages[0]["content"]
    assert adapt_history([{"role": "user", "content": "hi"}], GENERIC) == [{"role": "user", "content": "hi"}]


def test_a_template_that_cannot_render_calls_gets_text_history_but_keeps_its_tools():
    from dataclasses import replace

    smollm3 = replace(HERMES, native_history=False)
    messages = adapt_history(CONVERSATION, smollm3, tools=TOOLS)
    assert messages[0] == CONVERSATION[0]  # the template lists the tools itself
    assert not any(m["role"] == "tool" or "tool_calls" in m for m in messages)


class FakeTokenizer:
    def __init__(self, template: str) -> None:
        self.template = template
        self.seen: dict = {}

    def apply_chat_template(self, messages, tools=None, add_generation_prompt=True, tokenize=False, **kwargs):
        self.seen = {"messages": messages, "tools": tools}
        return render(self.template, messages, tools)

    def encode(self, text, add_special_tokens=False):
        return list(range(len(text.split())))


def test_render_chat_describes_tools_in_the_system_message_for_generic():
    chat = ChatRequest(model="m", messages=copy.deepcopy(CONVERSATION), tools=TOOLS)
    tokenizer = FakeTokenizer(SMOLLM2)
    prompt = render_chat(tokenizer, chat, None, None, tool_format=GENERIC)
    assert tokenizer.seen["tools"] is None and "# Tools" in prompt.text and "## Read" in prompt.text
    assert template_tools(chat, HERMES) == TOOLS and template_tools(chat, GENERIC) is None


def test_render_chat_without_a_tool_format_is_unchanged():
    chat = ChatRequest(model="m", messages=copy.deepcopy(CONVERSATION[:2]), tools=TOOLS)
    assert messages_for_template(chat) == CONVERSATION[:2]
    tokenizer = FakeTokenizer(SMOLLM2)
    render_chat(tokenizer, chat, None, None)
    assert tokenizer.seen["tools"] == TOOLS
