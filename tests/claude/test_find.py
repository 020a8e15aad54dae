"""Finding `claude`: the override, PATH, install places, and npm's stub swapped for the native binary."""

from __future__ import annotations

import os
import re

import pytest

from mlxclaude.claude import claude_version, find_claude, require_claude
from mlxclaude.claude import find as find_module
from mlxclaude.claude.find import platform_packages
from mlxclaude.errors import MlxClaudeError
from support.claude_code import find_claude as find_real_claude

STUB = b"#!/bin/sh\necho 'claude native binary not installed; run: node cli-wrapper.cjs' >&2\nexit 1\n"


def fake_binary(path, version="9.9.9"):
    """A script over the stub size limit that answers --version like Claude Code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = f'#!/bin/sh\necho "{version} (Claude Code)"\n' + "# padding\n" * 600
    path.write_text(body)
    path.chmod(0o755)
    return path


def fake_stub(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(STUB)
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Nothing from this machine: an empty PATH, a fresh HOME, no npm prefix but the test's own."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLXCLAUDE_CLAUDE_BIN", raising=False)
    monkeypatch.setattr(find_module, "_npm_prefixes", lambda: iter([tmp_path / "npm-global"]))


def npm_tree(root, *, nested=False, with_native=True):
    """An npm global install whose postinstall was skipped: bin/claude → the package's stub."""
    package = root / "lib" / "node_modules" / "@anthropic-ai" / "claude-code"
    stub = fake_stub(package / "bin" / "claude.exe")
    native = None
    if with_native:
        name, binary = platform_packages()[0]
        base = package / "node_modules" / "@anthropic-ai" if nested else package.parent
        native = fake_binary(base / name / binary)
    link = root / "bin" / "claude"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(stub, link.parent))
    return link, stub, native


def test_explicit_binary_wins(tmp_path, monkeypatch):
    explicit = fake_binary(tmp_path / "custom" / "claude")
    link, _, _ = npm_tree(tmp_path / "npm-global")
    monkeypatch.setenv("PATH", str(link.parent))
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(explicit))
    assert find_claude() == explicit


def test_explicit_binary_that_is_missing_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_CLAUDE_BIN", str(tmp_path / "nope"))
    assert find_claude() is None
    with pytest.raises(MlxClaudeError, match="MLXCLAUDE_CLAUDE_BIN=") as caught:
        require_claude()
    assert "MLXCLAUDE_CLAUDE_BIN" in caught.value.hint


def test_not_found_anywhere():
    assert find_claude() is None
    with pytest.raises(MlxClaudeError) as caught:
        require_claude()
    assert caught.value.message == "claude not found"
    assert caught.value.hint == "npm install -g @anthropic-ai/claude-code"


def test_path_comes_first(tmp_path, monkeypatch):
    on_path = fake_binary(tmp_path / "bin" / "claude")
    fake_binary(tmp_path / "home" / ".local" / "bin" / "claude")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_claude() == on_path


@pytest.mark.parametrize("place", [(".claude", "local", "claude"), (".local", "bin", "claude")])
def test_common_install_places(tmp_path, place):
    binary = fake_binary(tmp_path.joinpath("home", *place))
    assert find_claude() == binary


def test_npm_stub_on_path_falls_back_to_the_native_package(tmp_path, monkeypatch):
    link, stub, native = npm_tree(tmp_path / "prefix")
    monkeypatch.setenv("PATH", str(link.parent))
    assert find_claude() == native
    assert claude_version(native) == "9.9.9"
    assert claude_version(stub) is None                     # the stub itself fails


def test_npm_stub_in_the_global_prefix_with_a_nested_native_package(tmp_path):
    _, _, native = npm_tree(tmp_path / "npm-global", nested=True)
    assert find_claude() == native


def test_stub_without_a_native_package_is_returned_as_is(tmp_path, monkeypatch):
    link, _, _ = npm_tree(tmp_path / "prefix", with_native=False)
    monkeypatch.setenv("PATH", str(link.parent))
    assert find_claude() == link


def test_require_claude_checks_a_given_path(tmp_path):
    with pytest.raises(MlxClaudeError, match="claude not found"):
        require_claude(tmp_path / "missing")
    binary = fake_binary(tmp_path / "claude")
    assert require_claude(binary) == binary


def test_version_of_something_that_is_not_claude(tmp_path):
    assert claude_version(tmp_path / "missing") is None
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\necho no version here\n")
    silent.chmod(0o755)
    assert claude_version(silent) is None


def test_version_of_the_real_binary():
    real = find_real_claude()
    if real is None:
        pytest.skip("claude binary not installed (npm install @anthropic-ai/claude-code)")
    version = claude_version(real)
    assert version is not None and re.fullmatch(r"\d+\.\d+\.\d+", version)
