"""Secrets masked wherever they could leave the process; bytes passed through untouched while there are none."""

import pytest

from mlxclaude import redaction


@pytest.fixture(autouse=True)
def no_secrets():
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


def test_with_no_secret_registered_bytes_pass_through_as_the_same_object():
    data = 'data: {"type": "ping"}\n\n'.encode() + b"\xff"  # not even valid UTF-8 is touched
    assert redaction.redact_bytes(data) is data


def test_a_registered_secret_is_masked_as_written_and_inside_json():
    redaction.register_secret('sk-live-"quoted"-key')
    raw = 'data: {"error": "bad key sk-live-\\"quoted\\"-key"}\n\n'.encode()
    assert redaction.redact_bytes(raw) == b'data: {"error": "bad key ***"}\n\n'
    assert redaction.redact("sk-live-\"quoted\"-key") == "***"
    assert redaction.redact_value({"sk-live-\"quoted\"-key": ["x sk-live-\"quoted\"-key"]}) == {"***": ["x ***"]}


def test_short_values_are_not_secrets():
    redaction.register_secret("abc")
    assert redaction.redact("abc def") == "abc def"
