#!/usr/bin/env python3
"""Regenerate completions/mlxclaude.{bash,zsh,fish} from the live Typer app.

The scripts are Typer's shims: they call back into `mlxclaude` (with _MLXCLAUDE_COMPLETE set) on every
TAB, so they change only when Typer's templates do, not when commands are added.

    python scripts/gen_completions.py            # rewrite completions/
    python scripts/gen_completions.py --out DIR  # write elsewhere (tests/cli/test_completions.py does)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROG = "mlxclaude"
SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """What `_MLXCLAUDE_COMPLETE=source_<shell> mlxclaude` prints (Typer's spelling; click's is <shell>_source)."""
    from typer.testing import CliRunner

    from mlxclaude.cli.main import app

    complete_var = f"_{PROG.upper()}_COMPLETE"
    errors = []
    for instruction in (f"source_{shell}", f"{shell}_source"):
        result = CliRunner().invoke(app, [], env={complete_var: instruction}, prog_name=PROG)
        if result.exit_code == 0 and result.stdout.strip():
            return result.stdout.strip() + "\n"
        errors.append(f"{instruction}: exit {result.exit_code}: {result.stderr.strip() or result.stdout.strip()}")
    raise RuntimeError(f"cannot generate the {shell} completion script: " + "; ".join(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "completions", help="directory to write into")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    args.out.mkdir(parents=True, exist_ok=True)
    for shell in SHELLS:
        path = args.out / f"{PROG}.{shell}"
        path.write_text(completion_script(shell), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
