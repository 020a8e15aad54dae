"""`mlxclaude models …`: pull, import, list, rm, check. Thin: parse, call mlxclaude.models, render."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command, new_app
from mlxclaude.cli._options import JsonOption

models_app = new_app(help="Pull, import, list, remove and check local MLX models.")

def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def size_label(size: Optional[int]) -> str:
    from mlxclaude.config.units import format_bytes

    return format_bytes(size) if size else "-"


@models_app.command("pull", cls=Command)
def pull(
    repo: Annotated[str, typer.Argument(
        metavar="REPO", show_default=False,
        help="Hugging Face repo id, optionally with a revision: org/name@rev.")],
    check: Annotated[bool, typer.Option("--check/--no-check", help="Run `models check` after the download.")] = True,
) -> None:
    """Download an MLX model into the Hugging Face cache, then check it."""
    from mlxclaude.models.hub import pull_model, split_repo_revision

    name, revision = split_repo_revision(repo)
    path = pull_model(name, revision)
    _output.stderr_console().print(f"[green]pulled[/] {name} → {path}")
    _output.echo(path)
    if check:
        run_check(name, path, as_json=False)


@models_app.command("import", cls=Command)
def import_model(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE", show_default=False,
        help="A .gguf file, or a Hugging Face safetensors model directory.")],
    name: Annotated[Optional[str], typer.Option(
        "--name", metavar="NAME", show_default="from the file or directory",
        help="Name of the imported model.")] = None,
    quantize: Annotated[Optional[str], typer.Option(
        "--quantize", metavar="4|8|gguf", show_default="full precision",
        help="Bits per weight; gguf keeps a GGUF file's own 4/8-bit blocks (smallest lossless import).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an imported model of the same name.")] = False,
) -> None:
    """Turn a GGUF file or a safetensors directory into an MLX model.

    A GGUF file from Ollama or LM Studio, or a Hugging Face safetensors model directory.
    """
    from mlxclaude.errors import UsageError

    if quantize not in (None, "4", "8", "gguf"):
        raise UsageError(f"--quantize must be 4, 8 or gguf, not {quantize}")
    if quantize == "gguf" and source.is_dir():
        raise UsageError("--quantize gguf applies to .gguf files; use 4 or 8 for a safetensors directory")
    console = _output.stderr_console()
    with console.status(f"importing {source.name}…"):
        if source.is_dir():
            from mlxclaude.models.convert_import import import_safetensors_dir

            path = import_safetensors_dir(source, name=name, quantize=int(quantize) if quantize else None,
                                          overwrite=force)
        else:
            from mlxclaude.models.gguf_import import import_gguf

            path = import_gguf(source, name=name, quantize=quantize, overwrite=force)
    console.print(f"[green]imported[/] {source} → {path}")
    _output.echo(path)


@models_app.command("list", cls=Command)
def list_models(as_json: JsonOption = False) -> None:
    """Local MLX models: the Hugging Face cache and imported models."""
    from mlxclaude.models.catalog import list_models as catalog_list

    models = catalog_list()
    if as_json:
        _output.print_json([model.to_dict() for model in models])
        return
    if not models:
        _output.note("no local models yet: `mlxclaude models pull REPO` or `mlxclaude models import FILE.gguf`")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("NAME", "SIZE", "QUANT", "CONTEXT", "TOOLS", "FITS", "SOURCE"):
        table.add_column(column)
    for model in models:
        fits = "[green]yes[/]" if model.fits_in_memory else "[red]no[/]"
        table.add_row(model.name, size_label(model.size_bytes), model.quant or "-",
                      str(model.context_length or "-"), model.tool_format or "-", fits, model.source)
    _output.stdout_console().print(table)


@models_app.command("rm", cls=Command)
def remove(
    name: Annotated[str, typer.Argument(
        metavar="NAME", show_default=False,
        help="The model's full name as `models list` shows it, or its directory.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accept a partial name that matches one model.")] = False,
) -> None:
    """Remove a local model (not the one the running daemon serves)."""
    from mlxclaude.models.catalog import remove_model

    removed = remove_model(name, allow_partial=yes)
    _output.note(f"removed {removed.name} ({size_label(removed.size_bytes)})")


@models_app.command("check", cls=Command)
def check(
    name: Annotated[str, typer.Argument(
        metavar="NAME", show_default=False, help="A name from `mlxclaude models list`, or a model directory.")],
    as_json: JsonOption = False,
) -> None:
    """Check that a model loads, calls tools and fits in memory.

    The check also renders tools through the chat template; it exits 1 if the model is unfit for Claude Code.
    """
    from mlxclaude.models.resolve import resolve

    report = run_check(name, resolve(name, pull=False).local_path(), as_json=as_json)
    if not report.fit_for_claude_code:
        raise typer.Exit(1)


STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def run_check(name: str, path: Path, *, as_json: bool):
    """Run `models check` on `path`: progress lines on stderr, the report as JSON on stdout with as_json."""
    from mlxclaude.models.check import check_model

    console = _output.stderr_console()

    def show(line) -> None:
        if not as_json:
            padding = " " * (5 - len(line.status))
            console.print(f"  {STATUS_STYLE.get(line.status, line.status)}{padding} {line.name:<14} ", end="")
            console.print(line.detail, markup=False)

    if not as_json:
        console.print(f"checking [bold]{name}[/] ({path})")
    report = check_model(path, name=name, on_line=show)
    if as_json:
        _output.print_json(report.to_dict())
    else:
        style = "green" if report.fit_for_claude_code else "red"
        console.print(f"[{style}]{report.verdict}[/]")
    return report
