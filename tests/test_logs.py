"""The structured log file: appended to, 0600 inside a 0700 directory."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mlxclaude import logs, paths


@pytest.fixture
def log_file():
    path = paths.daemon_log_file()
    yield path
    logs.configure(None)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_log_is_0600_in_a_0700_directory(log_file):
    logs.configure(log_file, echo=False)
    logs.log_event("hello", kind="daemon")
    assert mode(log_file.parent) == 0o700 and mode(log_file) == 0o600
    assert json.loads(log_file.read_text())["event"] == "hello"


def test_an_existing_readable_log_is_tightened_and_kept(log_file):
    log_file.parent.mkdir(parents=True)
    os.chmod(log_file.parent, 0o755)
    log_file.write_text('{"event": "earlier"}\n')
    os.chmod(log_file, 0o644)
    logs.configure(log_file, echo=False)
    logs.log_event("later", kind="daemon")
    assert mode(log_file.parent) == 0o700 and mode(log_file) == 0o600
    assert [json.loads(line)["event"] for line in log_file.read_text().splitlines()] == ["earlier", "later"]


def test_the_daemons_stderr_log_is_rewritten_0600(tmp_path):
    from mlxclaude.daemon.manager import stderr_log_file

    path = stderr_log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"old crash\n")
    path.chmod(0o644)
    with logs.open_private(path, "wb") as output:
        output.write(b"new\n")
    assert path.read_bytes() == b"new\n" and mode(path) == 0o600 and mode(path.parent) == 0o700
