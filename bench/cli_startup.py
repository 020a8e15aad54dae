"""Start-up cost of the CLI against `python -c "import typer"`, the floor any Typer CLI pays.

Runs each command --rounds times, interleaved (so a busy machine slows all of them alike), after one
warm-up round that also compiles the byte-code, and prints the median wall time and the median CPU time
(user + system; steadier on a shared machine) of each, with their ratios to the Typer import. `status`
runs with no daemon, under a temporary MLXCLAUDE_HOME, so it exits 3 ("not running") as a user would
see it before `mlxclaude up`. Targets (issue G): status ≤ ~1.3×, --help ≤ ~1.5×.

    python bench/cli_startup.py [--rounds 21] [--importtime]

--importtime also prints, for each command, the ten slowest imports from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from mlxclaude.cli.main import main; main()"


def commands() -> dict[str, tuple[list[str], list[str]]]:
    """name -> (argv as a user runs it, python arguments for -X importtime). The CLI runs through the
    installed console script when there is one."""
    script = Path(sys.executable).with_name("mlxclaude")
    cli = [str(script)] if script.is_file() else [sys.executable, "-c", ENTRY]
    table = {'python -c "import typer"': ([sys.executable, "-c", "import typer"], ["-c", "import typer"])}
    for args in (["--help"], ["--version"], ["status"]):
        table[f"mlxclaude {args[0]}"] = ([*cli, *args], ["-c", ENTRY, *args])
    return table


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slowest_imports(python_args: list[str], env: dict[str, str], count: int = 10) -> list[tuple[int, str]]:
    """(cumulative µs, package) of the slowest top-level imports under `python -X importtime`."""
    result = subprocess.run([sys.executable, "-X", "importtime", *python_args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = []
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[1].strip().isdigit() and not fields[2].startswith("  "):
            rows.append((int(fields[1]), fields[2].strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command (median reported)")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports of each")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="mlxclaude-bench-")
    # as an installed package runs: byte-code compiled once (the warm-up) and read back, from a temporary
    # PYTHONPYCACHEPREFIX so nothing is written into the tree even where PYTHONDONTWRITEBYTECODE is set
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MLXCLAUDE_") and key != "PYTHONDONTWRITEBYTECODE"}
    env |= {"MLXCLAUDE_HOME": home, "COLUMNS": "80", "PYTHONPYCACHEPREFIX": os.path.join(home, "pycache")}
    try:
        todo = commands()
        for argv, _ in todo.values():  # warm-up: page cache, .pyc files
            run_once(argv, env)
        wall: dict[str, list[float]] = {name: [] for name in todo}
        cpu: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(args.rounds):
            for name, (argv, _) in todo.items():
                elapsed, used = run_once(argv, env)
                wall[name].append(elapsed)
                cpu[name].append(used)
        base = 'python -c "import typer"'
        base_wall, base_cpu = statistics.median(wall[base]), statistics.median(cpu[base])
        print(f"medians of {args.rounds} runs each ({sys.executable})")
        print(f"{'command':<28} {'wall':>9} {'ratio':>7} {'cpu':>10} {'ratio':>7}")
        for name in todo:
            median_wall, median_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"{name:<28} {median_wall * 1000:>7.1f}ms {median_wall / base_wall:>6.2f}× "
                  f"{median_cpu * 1000:>8.1f}ms {median_cpu / base_cpu:>6.2f}×")
        if args.importtime:
            for name, (_, python_args) in todo.items():
                print(f"\n{name}: slowest top-level imports (cumulative)")
                for micros, module in slowest_imports(python_args, env):
                    print(f"  {micros / 1000:>7.1f}ms  {module}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
