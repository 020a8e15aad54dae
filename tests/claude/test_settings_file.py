"""settings.json wiring: merge, backup, byte-exact undo, user edits kept, malformed files untouched."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mlxclaude.claude import build_env, settings_path, show_settings, unwire_settings, wire_settings
from mlxclaude.errors import MlxClaudeError

ENV = build_env(base_url="http://127.0.0.1:8765", token="tok-secret-123", model_id="claude-local-tiny",
                context_length=131072)

# unusual but valid formatting: tabs, no trailing newline, unicode, a value we will overwrite
ORIGINAL = (b'{\t"model" :"opus",\n"permissions":{"allow":["Bash(npm run *)"]},'
            b'  "env": {"FOO": "bar", "ANTHROPIC_BASE_URL": "https://gateway.example", "EMOJI": "\xc3\xa9\xe2\x9c\x93"},'
            b'"hooks": {}}')


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)


def user_file(tmp_path):
    return tmp_path / "home" / ".claude" / "settings.json"


def write(path, raw: bytes, mode: int = 0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    os.chmod(path, mode)


def test_target_is_the_user_file(tmp_path):
    assert settings_path() == user_file(tmp_path)
    assert settings_path(tmp_path / "proj") == tmp_path / "proj" / ".claude" / "settings.local.json"


def test_round_trip_on_an_existing_file_is_byte_exact(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL, 0o640)
    result = wire_settings(ENV)
    assert result.path == target and not result.created
    assert result.replaced == ("ANTHROPIC_BASE_URL",)
    assert set(result.added) == set(ENV) - {"ANTHROPIC_BASE_URL"}
    assert result.backup is not None and result.backup.read_bytes() == ORIGINAL
    assert str(result.backup).startswith(str(tmp_path / "mlxclaude" / "state" / "settings-backups"))

    raw = target.read_bytes()
    assert raw.endswith(b"}\n") and b'\n  "model": "opus",\n' in raw      # indent 2, trailing newline
    data = json.loads(raw)
    assert list(data) == ["model", "permissions", "env", "hooks"]          # key order kept
    assert data["permissions"] == {"allow": ["Bash(npm run *)"]} and data["hooks"] == {}
    assert data["env"]["FOO"] == "bar" and data["env"]["EMOJI"] == "é✓"
    assert {key: data["env"][key] for key in ENV} == ENV
    assert stat.S_IMODE(target.stat().st_mode) == 0o640                     # mode preserved

    undone = unwire_settings()
    assert undone.action == "restored"
    assert target.read_bytes() == ORIGINAL
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert unwire_settings().action == "not-wired"


def test_missing_file_is_created_then_deleted_and_the_directory_left(tmp_path):
    target = user_file(tmp_path)
    result = wire_settings(ENV)
    assert result.created and result.backup is None and result.replaced == ()
    assert json.loads(target.read_bytes()) == {"env": ENV}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600                     # it holds the token
    assert unwire_settings().action == "deleted"
    assert not target.exists() and target.parent.is_dir()


@pytest.mark.parametrize("raw, fragment", [
    (b'{"env": {"A": "1",}}', "invalid JSON at line 1 column 19: Expecting property name"),
    (b'{\n  "env": {\n    "A": 1\n', "invalid JSON at line 4 column 1"),
    (b'["not", "an", "object"]', "expected a JSON object at the top, found an array"),
    (b'{"env": ["A=1"]}', '"env" must be an object, found an array'),
    (b'{"env": "A=1"}', '"env" must be an object, found a string'),
    (b'\xff\xfe{}', "not UTF-8"),
])
def test_malformed_file_is_an_error_and_untouched(tmp_path, raw, fragment):
    target = user_file(tmp_path)
    write(target, raw)
    with pytest.raises(MlxClaudeError) as caught:
        wire_settings(ENV)
    assert str(target) in caught.value.message and fragment in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.hint == "fix or move it, then retry"
    assert target.read_bytes() == raw
    assert unwire_settings().action == "not-wired"


def test_user_edits_between_wire_and_unwire_are_kept(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    data = json.loads(target.read_bytes())
    data["theme"] = "dark"                                  # a new top-level key
    data["env"]["MY_VAR"] = "mine"                          # a new env entry
    data["env"]["API_TIMEOUT_MS"] = "42"                    # one of ours, changed by the user
    del data["env"]["DISABLE_TELEMETRY"]                    # one of ours, removed by the user
    target.write_text(json.dumps(data, indent=4))

    result = unwire_settings()
    assert result.action == "merged"
    assert set(result.kept) == {"API_TIMEOUT_MS", "DISABLE_TELEMETRY"}
    assert result.restored == ("ANTHROPIC_BASE_URL",)
    after = json.loads(target.read_bytes())
    assert after["theme"] == "dark" and after["model"] == "opus" and after["hooks"] == {}
    assert after["env"] == {"FOO": "bar", "ANTHROPIC_BASE_URL": "https://gateway.example", "EMOJI": "é✓",
                            "API_TIMEOUT_MS": "42", "MY_VAR": "mine"}
    assert target.read_bytes().endswith(b"\n")


def test_user_edits_on_a_file_we_created_keep_the_file(tmp_path):
    target = user_file(tmp_path)
    wire_settings(ENV)
    data = json.loads(target.read_bytes())
    data["model"] = "sonnet"
    target.write_text(json.dumps(data))
    assert unwire_settings().action == "merged"
    assert json.loads(target.read_bytes()) == {"model": "sonnet"}       # our `env` object is gone too


def test_rewire_keeps_the_original_for_a_byte_exact_undo(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    second = dict(ENV, ANTHROPIC_MODEL="claude-local-other", CLAUDE_AUTOCOMPACT_PCT_OVERRIDE="12")
    result = wire_settings(second)
    assert result.replaced == ("ANTHROPIC_MODEL",) and result.added == ("CLAUDE_AUTOCOMPACT_PCT_OVERRIDE",)
    third = dict(ENV)                                       # drops the override again
    wire_settings(third)
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" not in json.loads(target.read_bytes())["env"]
    assert unwire_settings().action == "restored"
    assert target.read_bytes() == ORIGINAL


def test_rewire_after_user_edits_still_restores_overwritten_values(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    data = json.loads(target.read_bytes())
    data["theme"] = "dark"
    target.write_text(json.dumps(data))
    wire_settings(dict(ENV, ANTHROPIC_MODEL="claude-local-other"))
    assert unwire_settings().action == "merged"
    after = json.loads(target.read_bytes())
    assert after["theme"] == "dark"
    assert after["env"] == {"FOO": "bar", "ANTHROPIC_BASE_URL": "https://gateway.example", "EMOJI": "é✓"}


def test_file_deleted_after_wire(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    target.unlink()
    assert unwire_settings().action == "missing"
    assert not target.exists()


def test_unwire_of_a_malformed_file_fails_and_keeps_the_record(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    target.write_bytes(b"{oops")
    with pytest.raises(MlxClaudeError, match="invalid JSON at line 1 column 2"):
        unwire_settings()
    assert target.read_bytes() == b"{oops"
    target.write_bytes(ORIGINAL)
    assert unwire_settings().action == "kept"               # none of our values left: nothing to undo
    assert target.read_bytes() == ORIGINAL


def test_project_target(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    local = project / ".claude" / "settings.local.json"
    result = wire_settings(ENV, project_dir=project)
    assert result.path == local and result.scope == "project" and result.created
    assert not user_file(tmp_path).exists()
    assert unwire_settings().action == "not-wired"          # the user file was never wired
    assert unwire_settings(project_dir=project).action == "deleted"
    assert not local.exists() and not local.parent.exists()  # the empty .claude/ wiring made goes too

    (project / ".claude").mkdir()
    (project / ".claude" / "commands.md").write_text("mine")
    wire_settings(ENV, project_dir=project)
    assert unwire_settings(project_dir=project).action == "deleted"
    assert (project / ".claude" / "commands.md").read_text() == "mine"  # a .claude/ with the user's files stays


def test_claude_config_dir_is_honoured(tmp_path, monkeypatch):
    config = tmp_path / "elsewhere"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    write(config / "settings.json", ORIGINAL)
    result = wire_settings(ENV)
    assert result.path == config / "settings.json"
    assert not user_file(tmp_path).exists()
    assert unwire_settings().action == "restored"
    assert (config / "settings.json").read_bytes() == ORIGINAL


def test_a_symlinked_settings_file_stays_a_symlink(tmp_path):
    real = tmp_path / "dotfiles" / "claude-settings.json"
    write(real, ORIGINAL)
    link = user_file(tmp_path)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    wire_settings(ENV)
    assert link.is_symlink() and json.loads(real.read_bytes())["env"]["FOO"] == "bar"
    unwire_settings()
    assert link.is_symlink() and real.read_bytes() == ORIGINAL


def test_the_record_lets_another_process_unwire(tmp_path):
    import subprocess
    import sys

    target = user_file(tmp_path)
    write(target, ORIGINAL)
    wire_settings(ENV)
    code = "from mlxclaude.claude import unwire_settings; print(unwire_settings().action)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert result.stdout.strip() == "restored" and target.read_bytes() == ORIGINAL


def test_show_says_who_set_what(tmp_path):
    target = user_file(tmp_path)
    write(target, ORIGINAL)
    before = show_settings()
    assert not before["wired"] and before["env"]["ANTHROPIC_BASE_URL"]["by"] == "user"
    assert "FOO" not in before["env"]                       # only endpoint-related keys
    wire_settings(ENV)
    data = json.loads(target.read_bytes())
    data["env"]["API_TIMEOUT_MS"] = "42"
    target.write_text(json.dumps(data))
    project = tmp_path / "proj"
    write(project / ".claude" / "settings.json", b'{"env": {"ANTHROPIC_BASE_URL": "http://other"}}')

    info = show_settings(cwd=project)
    assert info["wired"] and info["edited_since_wire"] and info["path"] == str(target)
    assert info["env"]["ANTHROPIC_MODEL"] == {"value": "claude-local-tiny", "by": "mlxclaude"}
    assert info["env"]["API_TIMEOUT_MS"] == {"value": "42", "by": "user"}
    assert info["env"]["ANTHROPIC_AUTH_TOKEN"]["value"] == "****-123"   # secrets masked
    assert info["shadowed_by"] == [{"path": str(project / ".claude" / "settings.json"),
                                    "keys": ["ANTHROPIC_BASE_URL"]}]
    json.dumps(info)                                        # `show --json` can print it
