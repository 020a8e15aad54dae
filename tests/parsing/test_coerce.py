import pytest

from mlxclaude.parsing.tools.coerce import coerce_arguments

SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "nothing": {"type": "null"},
        "maybe_count": {"type": ["integer", "null"]},
        "items": {"type": "array", "items": {"type": "integer"}},
        "edits": {"type": "array", "items": {"type": "object", "properties": {
            "old": {"type": "string"}, "replace_all": {"type": "boolean"}}}},
        "options": {"type": "object", "properties": {"depth": {"type": "integer"},
                                                     "inner": {"type": "object", "properties": {"on": {"type": "boolean"}}}}},
        "mode": {"enum": ["fast", "slow", 3]},
        "either": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]},
        "timeout": {"type": "number", "minimum": 0},
        "free": {},
        "map": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}


@pytest.mark.parametrize(
    "arguments,expected",
    [
        ({"count": "3"}, {"count": 3}),
        ({"count": " -12 "}, {"count": -12}),
        ({"count": "3.0"}, {"count": 3}),
        ({"count": 3.0}, {"count": 3}),
        ({"count": "3.5"}, {"count": "3.5"}),  # not an integer: left alone
        ({"count": "three"}, {"count": "three"}),
        ({"ratio": "0.25"}, {"ratio": 0.25}),
        ({"ratio": "1e3"}, {"ratio": 1000.0}),
        ({"ratio": "7"}, {"ratio": 7}),
        ({"ratio": "nan"}, {"ratio": "nan"}),
        ({"timeout": "120000"}, {"timeout": 120000}),
        ({"flag": "true"}, {"flag": True}),
        ({"flag": "False"}, {"flag": False}),
        ({"flag": "yes"}, {"flag": "yes"}),
        ({"nothing": "null"}, {"nothing": None}),
        ({"maybe_count": "null"}, {"maybe_count": None}),
        ({"maybe_count": "5"}, {"maybe_count": 5}),
        ({"items": "[1, 2, 3]"}, {"items": [1, 2, 3]}),
        ({"items": ["1", 2]}, {"items": [1, 2]}),
        ({"items": "[1, 2"}, {"items": "[1, 2"}),
        ({"items": "['a', 'b']"}, {"items": ["a", "b"]}),  # Python literal
        ({"edits": '[{"old": "x", "replace_all": "true"}]'}, {"edits": [{"old": "x", "replace_all": True}]}),
        ({"options": '{"depth": "2", "inner": {"on": "false"}}'}, {"options": {"depth": 2, "inner": {"on": False}}}),
        ({"options": {"depth": "2", "other": "x"}}, {"options": {"depth": 2, "other": "x"}}),
        ({"text": 42}, {"text": "42"}),
        ({"text": True}, {"text": "true"}),
        ({"text": "42"}, {"text": "42"}),  # a string stays a string
        ({"text": ["a"]}, {"text": ["a"]}),
        ({"mode": "3"}, {"mode": 3}),
        ({"mode": "fast"}, {"mode": "fast"}),
        ({"either": "7"}, {"either": 7}),
        ({"either": '["a"]'}, {"either": ["a"]}),
        ({"either": "x"}, {"either": "x"}),
        ({"free": "12"}, {"free": "12"}),  # no type: left alone
        ({"unknown": "12"}, {"unknown": "12"}),  # not in the schema: left alone
        ({"map": {"a": "1", "b": 2}}, {"map": {"a": 1, "b": 2}}),
        ({}, {}),
    ],
)
def test_coerce_arguments(arguments, expected):
    assert coerce_arguments(arguments, SCHEMA) == expected


def test_the_input_is_not_modified():
    arguments = {"count": "3", "options": {"depth": "2"}}
    coerce_arguments(arguments, SCHEMA)
    assert arguments == {"count": "3", "options": {"depth": "2"}}


@pytest.mark.parametrize(
    "schema",
    [None, {}, {"type": "object"}, {"properties": None}, {"properties": {"count": "integer"}},
     {"properties": {"count": {"type": 5}}}, {"properties": {"count": {"anyOf": "x"}}}, {"$ref": "#/x"},
     {"properties": {"count": {"allOf": [{"type": "integer"}, {"minimum": 1}]}}}],
)
def test_odd_schemas_never_raise(schema):
    assert coerce_arguments({"count": "3"}, schema) == {"count": "3"}


def test_deep_nesting_is_safe():
    schema: dict = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(200):
        inner["properties"]["x"] = {"type": "object", "properties": {}}
        inner = inner["properties"]["x"]
    value: dict = {}
    cursor = value
    for _ in range(200):
        cursor["x"] = {}
        cursor = cursor["x"]
    assert coerce_arguments(value, schema) == value
