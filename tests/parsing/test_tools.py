import pytest

from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools import HERMES, detect_tool_format, parse_hermes


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


@pytest.mark.parametrize(
    "template,expected",
    [
        (None, None),
        ("", None),
        ("{% for m in messages %}{{ m.content }}{% endfor %}", None),
        ("{{- '<tool_call>\\n' }}{{ tool_call | tojson }}{{- '\\n</tool_call>' }}", HERMES),
    ],
)
def test_detect_tool_format(template, expected):
    assert detect_tool_format(template) is expected
