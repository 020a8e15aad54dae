"""`mlxclaude serve` argument checks and the CLI's import discipline."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlxclaude.cli.main import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_non_loopback_bind_without_token_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_AUTH_TOKEN", raising=False)
    code, out, err = run_cli(["serve", "--model", str(tmp_path), "--host", "0.0.0.0"], capsys)
    assert code == 2 and out == ""
    assert "refusing to bind 0.0.0.0 without a token" in err and "--auth-token" in err


def test_missing_model_directory_is_one_line_with_a_hint(tmp_path, capsys):
    code, _, err = run_cli(["serve", "--model", str(tmp_path / "nope")], capsys)
    assert code == 1
    assert err.splitlines()[0].startswith("error: model directory not found")
    assert err.splitlines()[1].startswith("hint: ")


def test_no_model_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("MLXCLAUDE_MODEL", raising=False)
    code, _, err = run_cli(["serve"], capsys)
    assert code == 2 and "no model given" in err


def test_help_imports_nothing_heavy():
    probe = (
        "import sys\n"
        "from mlxclaude.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('mlx', 'mlx_lm', 'fastapi', 'uvicorn', 'transformers', 'starlette') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout, result.stdout
    assert "serve" in result.stdout
