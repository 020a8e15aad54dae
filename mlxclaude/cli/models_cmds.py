"""`mlxclaude models …`: pull, import, list, rm, check. Thin: parse, call mlxclaude.models, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

models_app = typer.Typer(help="Pull, import, list, remove and check local MLX models.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def human_size(size: int | None) -> str:
    if not size:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


@models_app.command("pull")
def pull(
    repo: str = typer.Argument(..., help="Hugging Face repo id, optionally @revision (org/name@rev)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run `models check` after the download."),
) -> None:
    """Download an MLX model into the Hugging Face cache, then check it."""
    from mlxclaude.models.hub import pull_model, split_repo_revision

    name, revision = split_repo_revision(repo)
    path = pull_model(name, revision)
    stderr_console().print(f"[green]pulled[/] {name} → {path}")
    typer.echo(str(path))
    if check:
        run_check(name, path, as_json=False)


@models_app.command("import")
def import_model(
    source: Path = typer.Argument(..., help="A .gguf file, or a Hugging Face safetensors model directory."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the imported model [default: from the file]."),
    quantize: Optional[str] = typer.Option(None, "--quantize",
                                           help="4 or 8 bits; `gguf` keeps a GGUF file's own 4/8-bit blocks "
                                                "(smallest lossless import) [default: full precision]."),
    force: bool = typer.Option(False, "--force", help="Replace an imported model of the same name."),
) -> None:
    """Turn a GGUF file (Ollama, LM Studio) or a safetensors directory into an MLX model."""
    from mlxclaude.errors import UsageError

    if quantize not in (None, "4", "8", "gguf"):
        raise UsageError(f"--quantize must be 4, 8 or gguf, not {quantize}")
    if quantize == "gguf" and source.is_dir():
        raise UsageError("--quantize gguf applies to .gguf files; use 4 or 8 for a safetensors directory")
    console = stderr_console()
    with console.status(f"importing {source.name}…"):
        if source.is_dir():
            from mlxclaude.models.convert_import import import_safetensors_dir

            path = import_safetensors_dir(source, name=name, quantize=int(quantize) if quantize else None,
                                          overwrite=force)
        else:
            from mlxclaude.models.gguf_import import import_gguf

            path = import_gguf(source, name=name, quantize=quantize, overwrite=force)
    console.print(f"[green]imported[/] {source} → {path}")
    typer.echo(str(path))


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Local MLX models: the Hugging Face cache and imported models."""
    from mlxclaude.models.catalog import list_models as catalog_list

    models = catalog_list()
    if as_json:
        typer.echo(json.dumps([model.to_dict() for model in models], indent=2))
        return
    if not models:
        stderr_console().print("no local models yet: `mlxclaude models pull REPO` or `mlxclaude models import FILE.gguf`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("NAME", "SIZE", "QUANT", "CONTEXT", "TOOLS", "FITS", "SOURCE"):
        table.add_column(column)
    for model in models:
        fits = "[green]yes[/]" if model.fits_in_memory else "[red]no[/]"
        table.add_row(model.name, human_size(model.size_bytes), model.quant or "-",
                      str(model.context_length or "-"), model.tool_format or "-", fits, model.source)
    Console().print(table)


@models_app.command("rm")
def remove(
    name: str = typer.Argument(..., help="The model's full name as shown by `models list`, or its directory."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept a partial name that matches one model."),
) -> None:
    """Remove a local model (not the one the running daemon serves)."""
    from mlxclaude.models.catalog import remove_model

    removed = remove_model(name, allow_partial=yes)
    stderr_console().print(f"removed {removed.name} ({human_size(removed.size_bytes)})")


@models_app.command("check")
def check(
    name: str = typer.Argument(..., help="Model name or directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check that a model loads, renders tools, calls tools and fits in memory."""
    from mlxclaude.models.catalog import resolve_model

    report = run_check(name, resolve_model(name), as_json=as_json)
    if not report.fit_for_claude_code:
        raise typer.Exit(1)


STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def run_check(name: str, path: Path, *, as_json: bool):
    from mlxclaude.models.check import check_model

    console = stderr_console()

    def show(line) -> None:
        if not as_json:
            padding = " " * (5 - len(line.status))
            console.print(f"  {STATUS_STYLE.get(line.status, line.status)}{padding} {line.name:<14} ", end="")
            console.print(line.detail, markup=False, highlight=False)

    if not as_json:
        console.print(f"checking [bold]{name}[/] ({path})")
    report = check_model(path, name=name, on_line=show)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        style = "green" if report.fit_for_claude_code else "red"
        console.print(f"[{style}]{report.verdict}[/]")
    return report
