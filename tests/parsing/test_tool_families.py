"""Every family's real output shapes, streamed at every chunk boundary: same events, no markup in the text."""

from dataclasses import dataclass, field

import pytest

from mlxclaude.parsing.events import ReplyEvent, TextPiece, ThinkingPiece, ToolCall
from mlxclaude.parsing.reply import ReplyParser
from mlxclaude.parsing.tools import GEMMA, GENERIC, GLM, HARMONY, HERMES, LLAMA3, MISTRAL, QWEN3_CODER, ToolFormat
from support.streaming import coalesce, every_chunking, parse_chunks

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
        "required": ["city"]}}},
    {"type": "function", "function": {"name": "Write", "description": "Write a file", "parameters": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"},
                       "options": {"type": "object", "properties": {"mode": {"type": "integer"}}},
                       "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["file_path", "content"]}}},
]

PARIS = ToolCall("get_weather", {"city": "Paris"})
ROME = ToolCall("get_weather", {"city": "Rome", "days": 3})
TOKYO = ToolCall("get_weather", {"city": "東京 🌸", "metric": True})
NESTED = ToolCall("Write", {"file_path": "/tmp/a.json", "content": '{"a": [1, {"b": null}]}',
                            "options": {"mode": 420}, "tags": ["x", "y"]})


def closing(close: str) -> ToolCall:
    return ToolCall("Write", {"file_path": "/tmp/t.md", "content": f'say "{close}" then \\ and }} ]'})


MARKUP = {
    "hermes": ("<tool_call>", "</tool_call>", '"name"'),
    "generic": ("<tool_call>", "</tool_call>", '"name"'),
    "qwen3_coder": ("<tool_call>", "<function=", "<parameter=", "</parameter>", "</function>"),
    "glm": ("<tool_call>", "<arg_key>", "<arg_value>", "</tool_call>"),
    "llama3": ("<|python_tag|>", '"name"', '"parameters"'),
    "mistral": ("[TOOL_CALLS]", "[ARGS]", '"name"'),
    "harmony": ("<|", "to=functions", "{"),
    "gemma": ("```tool_code", "get_weather(", "Write("),
}


@dataclass(frozen=True)
class Case:
    id: str
    fmt: ToolFormat
    text: str
    expected: list[ReplyEvent]
    options: dict = field(default_factory=dict)


def hermes_call(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


HERMES_CASES = [
    Case("single", HERMES, hermes_call("get_weather", '{"city": "Paris"}'), [PARIS]),
    Case("two", HERMES, hermes_call("get_weather", '{"city": "Paris"}') + "\n"
         + hermes_call("get_weather", '{"city": "Rome", "days": 3}'), [PARIS, ROME]),
    Case("after text", HERMES, "Let me check.\n\n" + hermes_call("get_weather", '{"city": "Paris"}'),
         [TextPiece("Let me check."), PARIS]),
    Case("thinking first", HERMES, "<think>\nNeed the weather.\n</think>\n\n"
         + hermes_call("get_weather", '{"city": "Paris"}'), [ThinkingPiece("Need the weather."), PARIS]),
    Case("nested json", HERMES, hermes_call("Write", '{"file_path": "/tmp/a.json", "content": "{\\"a\\": [1, {\\"b\\": null}]}", '
                                            '"options": {"mode": 420}, "tags": ["x", "y"]}'), [NESTED]),
    Case("close marker in a string", HERMES,
         hermes_call("Write", '{"file_path": "/tmp/t.md", "content": "say \\"</tool_call>\\" then \\\\ and } ]"}'),
         [closing("</tool_call>")]),
    Case("unicode", HERMES, "Voilà 👇\n" + hermes_call("get_weather", '{"city": "東京 🌸", "metric": true}'),
         [TextPiece("Voilà 👇"), TOKYO]),
    Case("arguments coerced by schema", HERMES, hermes_call("get_weather", '{"city": "Rome", "days": "3"}'), [ROME]),
    Case("qwen3 xml inside hermes tags", HERMES,
         "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>", [PARIS]),
    Case("bare json is the whole reply", HERMES, '{"name": "get_weather", "arguments": {"city": "Paris"}}', [PARIS]),
    Case("bare json in a fence", HERMES, '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n',
         [PARIS]),
    Case("bare json after thinking", HERMES,
         '<think>hm</think>\n{"name": "get_weather", "arguments": {"city": "Paris"}}', [ThinkingPiece("hm"), PARIS]),
    Case("two bare calls", HERMES, '{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
         '{"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}', [PARIS, ROME]),
    Case("call cut at max_tokens", HERMES, '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}',
         [PARIS]),
    Case("trailing garbage repaired", HERMES,
         '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}} hope this helps</tool_call>', [PARIS]),
    Case("single quotes repaired", HERMES, "<tool_call>{'name': 'get_weather', 'arguments': {'city': 'Paris'}}</tool_call>",
         [PARIS]),
    Case("fenced json inside the tags", HERMES,
         '<tool_call>\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n</tool_call>', [PARIS]),
]

GENERIC_CASES = [
    Case("single", GENERIC, hermes_call("get_weather", '{"city": "Paris"}'), [PARIS]),
    Case("after text", GENERIC, "Sure.\n" + hermes_call("get_weather", '{"city": "Paris"}'), [TextPiece("Sure."), PARIS]),
    Case("bare", GENERIC, ' {"name": "get_weather", "arguments": {"city": "Paris"}} ', [PARIS]),
]


def coder_call(name: str, params: dict[str, str], wrapped: bool = True) -> str:
    inner = f"<function={name}>\n" + "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items()) + "</function>"
    return f"<tool_call>\n{inner}\n</tool_call>" if wrapped else inner


QWEN3_CODER_CASES = [
    Case("single", QWEN3_CODER, coder_call("get_weather", {"city": "Paris"}), [PARIS]),
    Case("two", QWEN3_CODER, coder_call("get_weather", {"city": "Paris"}) + "\n"
         + coder_call("get_weather", {"city": "Rome", "days": "3"}), [PARIS, ROME]),
    Case("after text", QWEN3_CODER, "I'll look.\n" + coder_call("get_weather", {"city": "Paris"}),
         [TextPiece("I'll look."), PARIS]),
    Case("thinking first", QWEN3_CODER, "<think>weather?</think>\n" + coder_call("get_weather", {"city": "Paris"}),
         [ThinkingPiece("weather?"), PARIS]),
    Case("nested json", QWEN3_CODER, coder_call("Write", {"file_path": "/tmp/a.json", "content": '{"a": [1, {"b": null}]}',
                                                          "options": '{"mode": 420}', "tags": '["x", "y"]'}), [NESTED]),
    Case("close markers in a value", QWEN3_CODER,
         coder_call("Write", {"file_path": "/tmp/t.md", "content": 'say "</tool_call>" then \\ and } ]'}),
         [closing("</tool_call>")]),
    Case("function close in a value", QWEN3_CODER,
         coder_call("Write", {"file_path": "/tmp/t.md", "content": 'say "</function>" then \\ and } ]'}),
         [closing("</function>")]),
    Case("unicode", QWEN3_CODER, coder_call("get_weather", {"city": "東京 🌸", "metric": "true"}), [TOKYO]),
    Case("without the wrapper", QWEN3_CODER, "Checking.\n" + coder_call("get_weather", {"city": "Paris"}, wrapped=False),
         [TextPiece("Checking."), PARIS]),
    Case("two without the wrapper", QWEN3_CODER, coder_call("get_weather", {"city": "Paris"}, wrapped=False) + "\n"
         + coder_call("get_weather", {"city": "Rome", "days": "3"}, wrapped=False), [PARIS, ROME]),
    Case("multiline value", QWEN3_CODER, coder_call("Write", {"file_path": "a.py", "content": "def f():\n    return 1\n"}),
         [ToolCall("Write", {"file_path": "a.py", "content": "def f():\n    return 1\n"})]),
]


def glm_call(name: str, args: dict[str, str], newlines: bool = True) -> str:
    sep = "\n" if newlines else ""
    body = "".join(f"{sep}<arg_key>{k}</arg_key>{sep}<arg_value>{v}</arg_value>" for k, v in args.items())
    return f"<tool_call>{name}{body}{sep}</tool_call>"


GLM_CASES = [
    Case("single", GLM, glm_call("get_weather", {"city": "Paris"}), [PARIS]),
    Case("two", GLM, glm_call("get_weather", {"city": "Paris"}) + glm_call("get_weather", {"city": "Rome", "days": "3"}),
         [PARIS, ROME]),
    Case("after text", GLM, "Checking the weather.\n" + glm_call("get_weather", {"city": "Paris"}),
         [TextPiece("Checking the weather."), PARIS]),
    Case("thinking first", GLM, "<think>The user wants weather.</think>" + glm_call("get_weather", {"city": "Paris"}),
         [ThinkingPiece("The user wants weather."), PARIS]),
    Case("glm 4.7 without newlines", GLM, glm_call("get_weather", {"city": "Paris"}, newlines=False), [PARIS]),
    Case("nested json", GLM, glm_call("Write", {"file_path": "/tmp/a.json", "content": '{"a": [1, {"b": null}]}',
                                                "options": '{"mode": 420}', "tags": '["x", "y"]'}), [NESTED]),
    Case("close marker in a value", GLM,
         glm_call("Write", {"file_path": "/tmp/t.md", "content": 'say "</tool_call>" then \\ and } ]'}),
         [closing("</tool_call>")]),
    Case("unicode", GLM, glm_call("get_weather", {"city": "東京 🌸", "metric": "true"}), [TOKYO]),
    Case("no arguments", GLM, "<tool_call>get_weather\n</tool_call>", [ToolCall("get_weather", {})]),
]


def llama(name: str, parameters: str) -> str:
    return f'{{"name": "{name}", "parameters": {parameters}}}'


LLAMA3_CASES = [
    Case("single bare", LLAMA3, llama("get_weather", '{"city": "Paris"}'), [PARIS]),
    Case("python tag", LLAMA3, "<|python_tag|>" + llama("get_weather", '{"city": "Paris"}'), [PARIS]),
    Case("two with semicolon", LLAMA3, "<|python_tag|>" + llama("get_weather", '{"city": "Paris"}') + "; "
         + llama("get_weather", '{"city": "Rome", "days": 3}'), [PARIS, ROME]),
    Case("two bare with semicolon", LLAMA3, llama("get_weather", '{"city": "Paris"}') + ";"
         + llama("get_weather", '{"city": "Rome", "days": 3}'), [PARIS, ROME]),
    Case("after text, python tag", LLAMA3, "Let me look that up. <|python_tag|>" + llama("get_weather", '{"city": "Paris"}'),
         [TextPiece("Let me look that up."), PARIS]),
    Case("after text, on its own line", LLAMA3, "Let me look that up.\n\n" + llama("get_weather", '{"city": "Paris"}'),
         [TextPiece("Let me look that up."), PARIS]),
    Case("thinking first", LLAMA3, "<think>ok</think>" + llama("get_weather", '{"city": "Paris"}'),
         [ThinkingPiece("ok"), PARIS]),
    Case("nested json", LLAMA3, llama("Write", '{"file_path": "/tmp/a.json", "content": "{\\"a\\": [1, {\\"b\\": null}]}", '
                                       '"options": {"mode": 420}, "tags": ["x", "y"]}'), [NESTED]),
    Case("brackets in a string", LLAMA3,
         llama("Write", '{"file_path": "/tmp/t.md", "content": "say \\"<|python_tag|>\\" then \\\\ and } ]"}'),
         [closing("<|python_tag|>")]),
    Case("unicode", LLAMA3, llama("get_weather", '{"city": "東京 🌸", "metric": true}'), [TOKYO]),
    Case("trailing prose after a leading call", LLAMA3, llama("get_weather", '{"city": "Paris"}') + "\n\nThis gets the weather.",
         [PARIS, TextPiece("This gets the weather.")]),
]

MISTRAL_CASES = [
    Case("v3 single", MISTRAL, '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]',
         [PARIS]),
    Case("v3 two", MISTRAL, '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, '
         '{"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}]', [PARIS, ROME]),
    Case("v11 single", MISTRAL, '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', [PARIS]),
    Case("v11 two", MISTRAL, '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_weather[ARGS]'
         '{"city": "Rome", "days": 3}', [PARIS, ROME]),
    Case("v11 with call id", MISTRAL, '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}', [PARIS]),
    Case("after text", MISTRAL, "I will check.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
         [TextPiece("I will check."), PARIS]),
    Case("thinking first", MISTRAL, "[THINK]need weather[/THINK][TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
         [ThinkingPiece("need weather"), PARIS], {"think_open": "[THINK]", "think_close": "[/THINK]"}),
    Case("nested json", MISTRAL, '[TOOL_CALLS]Write[ARGS]{"file_path": "/tmp/a.json", "content": "{\\"a\\": [1, {\\"b\\": null}]}", '
         '"options": {"mode": 420}, "tags": ["x", "y"]}', [NESTED]),
    Case("marker in a string", MISTRAL,
         '[TOOL_CALLS]Write[ARGS]{"file_path": "/tmp/t.md", "content": "say \\"[ARGS]\\" then \\\\ and } ]"}',
         [closing("[ARGS]")]),
    Case("unicode", MISTRAL, '[TOOL_CALLS]get_weather[ARGS]{"city": "東京 🌸", "metric": true}', [TOKYO]),
    Case("eos token", MISTRAL, '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}</s>', [PARIS]),
]


def harmony_call(name: str, arguments: str, *, recipient_first: bool = False) -> str:
    if recipient_first:
        return f"<|start|>assistant to=functions.{name}<|channel|>commentary json<|message|>{arguments}<|call|>"
    return f"<|start|>assistant<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{arguments}<|call|>"


ANALYSIS = "<|channel|>analysis<|message|>User wants weather.<|end|>"
HARMONY_CASES = [
    Case("single", HARMONY, ANALYSIS + harmony_call("get_weather", '{"city":"Paris"}'),
         [ThinkingPiece("User wants weather."), PARIS]),
    Case("no analysis", HARMONY, '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}',
         [PARIS]),
    Case("two", HARMONY, ANALYSIS + harmony_call("get_weather", '{"city":"Paris"}')
         + harmony_call("get_weather", '{"city":"Rome","days":3}'), [ThinkingPiece("User wants weather."), PARIS, ROME]),
    Case("recipient before channel", HARMONY, harmony_call("get_weather", '{"city":"Paris"}', recipient_first=True),
         [PARIS]),
    Case("preamble text first", HARMONY, ANALYSIS + "<|start|>assistant<|channel|>commentary<|message|>Checking now.<|end|>"
         + harmony_call("get_weather", '{"city":"Paris"}'),
         [ThinkingPiece("User wants weather."), TextPiece("Checking now."), PARIS]),
    Case("final answer", HARMONY, ANALYSIS + "<|start|>assistant<|channel|>final<|message|>It is sunny.<|return|>",
         [ThinkingPiece("User wants weather."), TextPiece("It is sunny.")]),
    Case("nested json", HARMONY, harmony_call("Write", '{"file_path":"/tmp/a.json","content":"{\\"a\\": [1, {\\"b\\": null}]}",'
                                              '"options":{"mode":420},"tags":["x","y"]}'), [NESTED]),
    Case("call marker in a string", HARMONY,
         harmony_call("Write", '{"file_path": "/tmp/t.md", "content": "say \\"to=functions.x\\" then \\\\ and } ]"}'),
         [closing("to=functions.x")]),
    Case("unicode", HARMONY, harmony_call("get_weather", '{"city": "東京 🌸", "metric": true}'), [TOKYO]),
    Case("cut at max_tokens", HARMONY, '<|channel|>commentary to=functions.get_weather json<|message|>{"city": "Paris"',
         [PARIS]),
    Case("thinking hidden", HARMONY, ANALYSIS + harmony_call("get_weather", '{"city":"Paris"}'), [PARIS],
         {"emit_thinking": False}),
]

GEMMA_CASES = [
    Case("single", GEMMA, '```tool_code\nget_weather(city="Paris")\n```', [PARIS]),
    Case("two", GEMMA, '```tool_code\nget_weather(city="Paris")\nget_weather(city="Rome", days=3)\n```', [PARIS, ROME]),
    Case("after text", GEMMA, 'Let me check.\n```tool_code\nget_weather(city="Paris")\n```', [TextPiece("Let me check."), PARIS]),
    Case("thinking first", GEMMA, '<think>hm</think>```tool_code\nget_weather(city="Paris")\n```', [ThinkingPiece("hm"), PARIS]),
    Case("nested values", GEMMA, '```tool_code\nWrite(file_path="/tmp/a.json", content="{\\"a\\": [1, {\\"b\\": null}]}", '
         'options={"mode": 420}, tags=["x", "y"])\n```', [NESTED]),
    Case("fence in a string", GEMMA, '```tool_code\nWrite(file_path="/tmp/t.md", content=\'say "```" then \\\\ and } ]\')\n```',
         [closing("```")]),
    Case("unicode", GEMMA, '```tool_code\nget_weather(city="東京 🌸", metric=true)\n```', [TOKYO]),
    Case("json body", GEMMA, '```tool_code\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```', [PARIS]),
    Case("generic markup accepted", GEMMA, hermes_call("get_weather", '{"city": "Paris"}'), [PARIS]),
    Case("ordinary code fence is text", GEMMA, "Run:\n```python\nprint(1)\n```", [TextPiece("Run:\n```python\nprint(1)\n```")]),
]

CASES = (HERMES_CASES + GENERIC_CASES + QWEN3_CODER_CASES + GLM_CASES + LLAMA3_CASES + MISTRAL_CASES
         + HARMONY_CASES + GEMMA_CASES)


def parse(chunks: list[str], fmt: ToolFormat, options: dict, tools=TOOLS) -> tuple[list[ReplyEvent], ReplyParser]:
    return parse_chunks(chunks, **({"emit_thinking": True, "tool_format": fmt, "tools": tools} | options))



@pytest.mark.parametrize("case", CASES, ids=[f"{case.fmt.name}: {case.id}" for case in CASES])
def test_events_do_not_depend_on_chunking(case: Case):
    expected_calls = sum(isinstance(event, ToolCall) for event in case.expected)
    for chunks in every_chunking(case.text):
        events, parser = parse(chunks, case.fmt, case.options)
        merged = coalesce(events)
        assert merged == case.expected, chunks
        assert parser.tool_calls_seen == expected_calls
        assert parser.failed_calls == []
        for event in merged:
            if isinstance(event, TextPiece) and case.id != "ordinary code fence is text":
                leaked = [m for m in MARKUP[case.fmt.name] if m in event.text]
                assert not leaked, (chunks, event)


@pytest.mark.parametrize(
    "fmt,text",
    [
        (HERMES, 'Before <tool_call>{"name": "get_weather", "arguments": {"city": "Par</tool_call> after'),
        (QWEN3_CODER, "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar"),
        (GLM, "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Par"),
        (MISTRAL, '[TOOL_CALLS]get_weather[ARGS]{"city": "Par'),
        (LLAMA3, '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Par'),
        (HARMONY, '<|channel|>commentary to=functions.get_weather json<|message|>{"city": "Par'),
        (GEMMA, '```tool_code\nget_weather(city="Par'),
    ],
    ids=lambda value: value.name if isinstance(value, ToolFormat) else "",
)
def test_a_broken_call_stays_text_and_is_recorded(fmt, text):
    for chunks in every_chunking(text):
        events, parser = parse(chunks, fmt, {})
        assert not any(isinstance(event, ToolCall) for event in events)
        assert len(parser.failed_calls) == 1
        rendered = "".join(event.text for event in events if isinstance(event, TextPiece))
        assert "Par" in rendered  # nothing is lost


def test_a_broken_quote_cannot_hide_the_rest_of_the_reply():
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Pa"ris"}}</tool_call> After.'
    for chunks in every_chunking(text):
        events, parser = parse(chunks, HERMES, {})
        assert coalesce(events) == [TextPiece(text)]
        assert parser.failed_calls == ['<tool_call>{"name": "get_weather", "arguments": {"city": "Pa"ris"}}</tool_call>']


@pytest.mark.parametrize(
    "fmt,text",
    [
        (HERMES, '{"name": "my-package", "version": "1.0.0"}'),
        (HERMES, '{"name": "not_a_tool", "arguments": {}}'),
        (HERMES, 'Here: {"name": "get_weather", "arguments": {"city": "Paris"}}'),
        (HERMES, '{"name": "get_weather", "arguments": {"city": "Paris"}} is how you would call it.'),
        (HERMES, '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\nThat is the call.'),
        (HERMES, '[1, 2, 3]'),
        (HERMES, '`inline` code'),
        (LLAMA3, 'Example:\n```json\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n```\nDone.'),
        (LLAMA3, '{"name": "get_weather", "parameters": {"city": "Paris"}, "extra": 1}'),
        (LLAMA3, '{"type": "object", "properties": {}}'),
    ],
)
def test_json_that_is_not_a_bare_call_is_text(fmt, text):
    for chunks in every_chunking(text):
        events, parser = parse(chunks, fmt, {})
        assert coalesce(events) == [TextPiece(text.strip())], chunks
        assert parser.tool_calls_seen == 0


def test_bare_hermes_json_needs_the_request_tools():
    text = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert coalesce(parse([text], HERMES, {}, tools=None)[0]) == [TextPiece(text)]
    assert parse([text], LLAMA3, {}, tools=None)[0] == [PARIS]  # Llama 3's own format: exact shape is enough


def test_unknown_tool_names_are_still_calls():
    events, _ = parse([hermes_call("Bash", '{"command": "ls"}')], HERMES, {})
    assert events == [ToolCall("Bash", {"command": "ls"})]


@pytest.mark.parametrize("name", ["functions.get_weather", "GET_WEATHER", " get_weather"])
def test_names_resolve_to_the_declared_tool(name):
    events, _ = parse([hermes_call(name, '{"city": "Rome", "days": "3"}')], HERMES, {})
    assert events == [ROME]


def test_an_empty_tool_list_means_markup_is_text():
    text = hermes_call("get_weather", '{"city": "Paris"}')
    events, parser = parse([text], HERMES, {}, tools=[])
    assert coalesce(events) == [TextPiece(text)] and parser.tool_calls_seen == 0


def test_harmony_channels_split_without_tools():
    text = ANALYSIS + "<|start|>assistant<|channel|>final<|message|>Hi!"
    events, _ = parse(list(text), HARMONY, {}, tools=[])
    assert coalesce(events) == [ThinkingPiece("User wants weather."), TextPiece("Hi!")]


def test_harmony_plain_text_without_headers_is_text():
    events, _ = parse(["Just text, no channels."], HARMONY, {})
    assert events == [TextPiece("Just text, no channels.")]


def test_harmony_starts_in_thinking():
    events, _ = parse(["still thinking<|end|><|start|>assistant<|channel|>final<|message|>ok"], HARMONY,
                      {"starts_in_thinking": True})
    assert events == [ThinkingPiece("still thinking"), TextPiece("ok")]


def test_calls_are_emitted_as_soon_as_they_close():
    parser = ReplyParser(emit_thinking=True, tool_format=HERMES, tools=TOOLS)
    assert parser.feed("Checking. <tool") == [TextPiece("Checking.")]
    assert parser.feed('_call>{"name": "get_weather", "arguments": {"city": "Paris"}}') == []
    assert parser.feed("</tool_call>") == [PARIS]


def test_bare_call_text_is_released_as_soon_as_it_cannot_be_a_call():
    parser = ReplyParser(emit_thinking=True, tool_format=HERMES, tools=TOOLS)
    assert parser.feed('{"versi') == []
    assert parser.feed('on": 1} and') == [TextPiece("{"), TextPiece('"version": 1} and')]


def test_long_calls_stream_in_linear_time():
    content = "x" * 200_000
    text = hermes_call("Write", f'{{"file_path": "a", "content": "{content}"}}')
    parser = ReplyParser(emit_thinking=True, tool_format=HERMES, tools=TOOLS)
    events = []
    for i in range(0, len(text), 4):
        events += parser.feed(text[i:i + 4])
    events += parser.finish()
    assert events == [ToolCall("Write", {"file_path": "a", "content": content})]
