"""A model whose context cannot hold Claude Code's prompt, on the real SmolLM2-135M (8k context): `models check`
fails with the figures, `run` and `up` refuse it before anything starts (unless --force), and `doctor` agrees —
all through models/context_fit.py."""

from __future__ import annotations

import json

import pytest

from support.cli_app import run_cli

pytestmark = pytest.mark.mlx

NEEDS = "Claude Code needs "
CONTEXT = "but the model's context is 8,192"


@pytest.fixture(scope="module")
def check_result(smollm2_model_dir):
    return run_cli("models", "check", str(smollm2_model_dir), "--json")


def test_check_fails_with_the_figures(check_result):
    assert check_result.code == 1
    report = json.loads(check_result.out)
    assert report["fit_for_claude_code"] is False
    lines = {line["name"]: line for line in report["lines"]}
    assert lines["context"]["status"] == "fail"
    assert lines["context"]["detail"].startswith(NEEDS) and lines["context"]["detail"].endswith(CONTEXT)
    figures = report["figures"]
    assert figures["context_available"] == 8192
    assert figures["context_needed"] == figures["claude_code_prompt_tokens"] + 4096 > 8192
    assert "--model mlx-community/" in report["advice"]
    for name in ("generation", "tool call", "speed"):  # minutes on a CPU, for a model that cannot be used anyway
        assert lines[name]["detail"] == "skipped: Claude Code's prompt does not fit (see context)"
    assert report["verdict"].endswith("(failed: context).")


def test_check_says_it_in_words(smollm2_model_dir):
    result = run_cli("models", "check", str(smollm2_model_dir))
    assert result.code == 1 and result.out == ""
    assert "context" in result.err and CONTEXT in " ".join(result.err.split())
    assert "hint: use a model with a longer context, e.g. `mlxclaude run --model mlx-community/" in result.err


@pytest.mark.parametrize("command", ["run", "up"])
def test_run_and_up_refuse_it_before_anything_starts(command, smollm2_model_dir, starts):
    result = run_cli(command, "--model", str(smollm2_model_dir))
    assert result.code == 1 and starts == []
    error, hint = result.err.splitlines()[-2:]
    assert error.startswith(f"error: {smollm2_model_dir.name} cannot run Claude Code: {NEEDS}")
    assert error.endswith(CONTEXT)
    assert hint.startswith(f"hint: use a model with a longer context, e.g. `mlxclaude {command} --model mlx-community/")
    assert hint.endswith("or pass --force to start it anyway")


@pytest.mark.parametrize("command", ["run", "up"])
def test_force_starts_it_anyway(command, smollm2_model_dir, starts):
    result = run_cli(command, "--force", "--model", str(smollm2_model_dir))
    assert result.code == 1 and "error: stopped by the test" in result.err
    assert [call["model"] for call in starts] == [str(smollm2_model_dir)]


def test_doctor_agrees_with_check(smollm2_model_dir, check_result, monkeypatch):
    from mlxclaude.doctor import check_model

    report = json.loads(check_result.out)
    context = next(line for line in report["lines"] if line["name"] == "context")
    doctor = check_model(str(smollm2_model_dir))
    assert doctor.status == "fail"
    assert doctor.detail.endswith(context["detail"])  # the same verdict, in the same words
    assert doctor.fix == report["advice"]

    monkeypatch.setenv("MLXCLAUDE_MODEL", str(smollm2_model_dir))
    result = run_cli("doctor", "--json")
    assert result.code == 1
    model = next(check for check in json.loads(result.out)["checks"] if check["name"] == "model")
    assert model["status"] == "fail" and context["detail"] in model["detail"]


def test_a_model_too_small_for_claude_code_is_not_picked_by_default(smollm2_model_dir, starts, monkeypatch):
    """The only model here cannot hold Claude Code's prompt: `up` does not pick it to refuse it a moment later;
    with the hub out of reach it says what works offline."""
    import socket

    from mlxclaude import paths

    imported = paths.imported_models_dir() / smollm2_model_dir.name
    imported.parent.mkdir(parents=True, exist_ok=True)
    imported.symlink_to(smollm2_model_dir, target_is_directory=True)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MLXCLAUDE_MODEL", raising=False)
    result = run_cli("up")
    assert result.code == 1 and starts == []
    assert "using " not in result.err  # not picked
    error, hint = result.err.splitlines()[-2:]
    assert error == "error: no model configured, and the Hugging Face hub cannot be reached to download one"
    assert "mlxclaude models import FILE.gguf" in hint and "mlxclaude models list" in hint


def test_forced_the_warning_is_the_checks_own_verdict(smollm2_model_dir, check_result, monkeypatch):
    """One notion of "fits": `run --force` warns with the very words `models check` fails with (no separate
    "at least 48k is recommended")."""
    from mlxclaude.cli._model_choice import prepare_model
    from mlxclaude.config.registry import ServerSettings

    monkeypatch.delenv("MLXCLAUDE_MODEL", raising=False)
    fit = prepare_model(ServerSettings(model=str(smollm2_model_dir)), explicit=True, force=True,
                        command="mlxclaude run")
    context = next(line for line in json.loads(check_result.out)["lines"] if line["name"] == "context")
    assert fit is not None and fit.status == "fail" and fit.detail() == context["detail"]
