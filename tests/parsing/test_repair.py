import pytest

from mlxclaude.parsing.tools.repair import close_brackets, repair_call_body, repair_json

CALL = {"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}',
        '  {"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}  ',
        # trailing garbage
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}} Let me know!',
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}}',
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}</tool_call>',
        # missing final brackets (cut at max_tokens)
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}',
        '{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}\n',
        # single quotes, Python literals
        "{'name': 'Bash', 'arguments': {'command': 'ls -la', 'timeout': 5}}",
        "{'name': 'Bash', 'arguments': {'command': 'ls -la', 'timeout': 5}",
        # code fences
        '```json\n{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}\n```',
        '[{"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}]',
    ],
)
def test_repairs_with_unambiguous_intent(body):
    assert repair_call_body(body) == CALL


@pytest.mark.parametrize(
    "body,expected",
    [
        ('{"a": True, "b": None, "c": False}', {"a": True, "b": None, "c": False}),
        ("{'a': true, 'b': null}", {"a": True, "b": None}),
        ('{"name": "f", "arguments": {"items": [1, 2], "ok": true', {"name": "f", "arguments": {"items": [1, 2], "ok": True}}),
        ('{"name": "f", "arguments": {"items": ["a", "b"],', {"name": "f", "arguments": {"items": ["a", "b"]}}),
        ('{"name": "f", "arguments": {"path": "a.py"}', {"name": "f", "arguments": {"path": "a.py"}}),
        ('{"name": "f", "arguments": {"note": "it\'s \\"fine\\""}', {"name": "f", "arguments": {"note": "it's \"fine\""}}),
    ],
)
def test_repaired_values(body, expected):
    assert repair_call_body(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json at all",
        'Sure! {"name": "f"}',  # leading prose: not a body
        '{"name": "f", "arguments": {"content": "half a fi',  # cut inside a string: the value would be truncated
        '{"name": "f", "arguments": {"count": 12',  # cut in a number: 12 or 1234?
        '{"name": "f", "arguments": {"path":',  # cut after a colon: the value is missing
        '{"name": "f", "arguments": {"path"',  # cut after a key
        '{"name": "f", "arguments": {',  # cut right after a bracket: its contents are missing
        '{"name": "f", "arguments": {"ok": tr',  # cut inside a word
        '{"name": "f", "arguments": ]',  # mismatched brackets
        '{name: "f"}',  # unquoted key
        '"just a string"',
        "[1, 2, 3]",  # not an object
        "{'a'}",  # a Python set
    ],
)
def test_ambiguous_bodies_are_not_repaired(body):
    assert repair_call_body(body) is None


def test_call_cut_at_max_tokens_is_completed():
    cut = '{"name": "Write", "arguments": {"file_path": "/tmp/x.py", "content": "print(1)\\n", "options": {"mode": "w"}'
    assert repair_call_body(cut) == {"name": "Write", "arguments": {
        "file_path": "/tmp/x.py", "content": "print(1)\n", "options": {"mode": "w"}}}


def test_close_brackets_adds_only_what_is_missing():
    assert close_brackets('{"a": [1, {"b": "x"}') == '{"a": [1, {"b": "x"}]}'
    assert close_brackets('{"a": "}]"') == '{"a": "}]"}'
    assert close_brackets('{"a": 1}') is None  # nothing to close


def test_repair_json_never_raises():
    for body in ["{" * 5000, "[" * 5000 + "]" * 4999, "{'a': " + "(" * 1000, "\x00{}", '{"a": "\\ud800"}']:
        repair_json(body)  # no exception
