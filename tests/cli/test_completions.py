"""completions/ holds the scripts the live Typer app generates; a stale file fails with the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from support.cli_app import run_process

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_completions.py"
SHELLS = ("bash", "zsh", "fish")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("completions")
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_completion_is_current(generated, shell):
    committed = REPO / "completions" / f"mlxclaude.{shell}"
    fresh = (generated / f"mlxclaude.{shell}").read_text()
    assert committed.is_file(), f"{committed} is missing: run `python scripts/gen_completions.py`"
    assert committed.read_text() == fresh, (
        f"{committed.relative_to(REPO)} is stale: run `python scripts/gen_completions.py` and commit the result")


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_call_back_into_mlxclaude(generated, shell):
    text = (generated / f"mlxclaude.{shell}").read_text()
    assert f"_MLXCLAUDE_COMPLETE=complete_{shell}" in text and "mlxclaude" in text


def test_the_callback_completes_every_command_of_the_live_app(monkeypatch):
    """The shell runs `mlxclaude` with the completion variables set; it answers with every command."""
    from mlxclaude.cli.main import app

    commands = sorted(name for name, command in get_command(app).commands.items() if not command.hidden)
    assert commands
    for key, value in {"_MLXCLAUDE_COMPLETE": "complete_bash", "COMP_WORDS": "mlxclaude ", "COMP_CWORD": "1"}.items():
        monkeypatch.setenv(key, value)
    result = run_process()
    assert result.returncode == 0, result.stderr
    offered = result.stdout.split()
    for name in commands:
        assert name in offered, (name, offered)


def completions(words: str, monkeypatch) -> list[str]:
    """What TAB offers after `words` (bash: the word being completed is the last, possibly empty)."""
    for key, value in {"_MLXCLAUDE_COMPLETE": "complete_bash", "COMP_WORDS": words,
                       "COMP_CWORD": str(len(words.split(" ")) - 1)}.items():
        monkeypatch.setenv(key, value)
    result = run_process()
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_model_names_complete_where_a_model_is_named(monkeypatch, tmp_path):
    from mlxclaude import paths

    imported = paths.imported_models_dir()
    for name in ("qwen-coder", "qwen-vl", "smollm2"):
        (imported / name).mkdir(parents=True)
        (imported / name / "config.json").write_text('{"model_type": "qwen2"}')
    assert completions("mlxclaude models rm ", monkeypatch) == ["qwen-coder", "qwen-vl", "smollm2"]
    assert completions("mlxclaude models check qwen", monkeypatch) == ["qwen-coder", "qwen-vl"]
    assert completions("mlxclaude up --model sm", monkeypatch) == ["smollm2"]
    assert completions("mlxclaude run -m qwen-v", monkeypatch) == ["qwen-vl"]


def test_setting_names_complete_for_config_keys(monkeypatch):
    from mlxclaude.config.registry import SETTINGS

    assert completions("mlxclaude config get ", monkeypatch) == [setting.name for setting in SETTINGS]
    offered = completions("mlxclaude config set max_", monkeypatch)
    assert offered and all(name.startswith("max_") for name in offered) and "max_batch" in offered
    assert completions("mlxclaude config unset image_b", monkeypatch) == ["image_backend"]
