"""`mlxclaude --help`, `--version` and TAB completion stay fast: in a fresh interpreter they import nothing
heavy (commands import what they use when they run). The one runtime check of what the CLI imports;
which package may import what is tests/test_layering.py's static concern."""

from __future__ import annotations

import pytest

from support.cli_app import run_process

HEAVY = {"mlx", "mlx_lm", "fastapi", "starlette", "uvicorn", "transformers", "huggingface_hub", "httpx", "numpy"}
COMPLETE = {"_MLXCLAUDE_COMPLETE": "complete_bash", "COMP_WORDS": "mlxclaude ", "COMP_CWORD": "1"}


def imported_modules(stderr: str) -> set[str]:
    """The modules `python -X importtime` reported loading."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args, extra_env, shows", [
    (["--help"], {}, "serve"),
    (["--version"], {}, "mlxclaude "),
    ([], COMPLETE, "status"),
], ids=["help", "version", "completion"])
def test_startup_imports_nothing_heavy(args, extra_env, shows, monkeypatch):
    for key, value in extra_env.items():
        monkeypatch.setenv(key, value)
    result = run_process(*args, python_options=["-X", "importtime"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert shows in result.stdout
    heavy = sorted(name for name in imported_modules(result.stderr) if name.split(".")[0] in HEAVY)
    assert not heavy, heavy


# What the commands people type most (and scripts poll) must not pay for: an HTTP client and TLS (a
# loopback status call is one socket), Rich (plain help; a console only to draw a table) and pydantic
# (Typer coerces a flag left at None through it; cli/_app.py gives such flags False).
NOT_AT_STARTUP = {"httpx", "ssl", "http", "urllib3", "rich", "pydantic", "pydantic_core"}


@pytest.mark.parametrize("args, code", [
    (["--help"], 0),
    (["--version"], 0),
    (["status"], 3),
    (["status", "--json"], 3),
], ids=["help", "version", "status", "status-json"])
def test_fast_commands_import_no_http_client_tls_rich_or_pydantic(args, code):
    result = run_process(*args, python_options=["-X", "importtime"])
    assert result.returncode == code, result.stderr[-2000:]
    slow = sorted(name for name in imported_modules(result.stderr) if name.split(".")[0] in NOT_AT_STARTUP)
    assert not slow, slow
