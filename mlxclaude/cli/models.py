"""`mlxclaude models …`: pull, import, list, rm, check. Thin: parse, call mlxclaude.models, render."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from mlxclaude.cli import _output
from mlxclaude.cli._app import Command, new_app
from mlxclaude.cli._complete import model_names
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
    """Download an MLX model into the Hugging Face cache, then check it.

    Ctrl-C stops it; files already downloaded are kept, and pulling again fetches the rest.
    """
    from mlxclaude.cli._progress import pull_with_progress
    from mlxclaude.models.hub import split_repo_revision

    name, revision = split_repo_revision(repo)
    path = pull_with_progress(name, revision)
    _output.stderr_console().print(f"[green]pulled[/] {name} → {path}")
    _output.echo(path)
    if check:
        run_check(name, path, as_json=False)


@models_app.command("import", cls=Command)
def import_model(
    source: Annotated[str, typer.Argument(
        metavar="SOURCE", show_default=False,
        help="A .gguf file, ollama:NAME[:TAG], lmstudio:PUBLISHER/REPO[/FILE.gguf], "
             "or a Hugging Face safetensors model directory.")],
    name: Annotated[Optional[str], typer.Option(
        "--name", metavar="NAME", show_default="from the file or directory; NAME-TAG for Ollama",
        help="Name of the imported model.")] = None,
    quantize: Annotated[Optional[str], typer.Option(
        "--quantize", metavar="4|8", show_default="a GGUF's own size class; a directory's precision",
        help="Quantize every weight matrix to 4 or 8 bits.")] = None,
    dtype: Annotated[Optional[str], typer.Option(
        "--dtype", metavar="float16|bfloat16|float32", show_default="a GGUF's own float type",
        help="Float type of the weights; with --quantize, of the scales and the unquantized tensors.")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify",
        help="Check a GGUF import with a few greedy tokens against the GGUF's own vocabulary.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace an imported model of the same name.")] = False,
) -> None:
    """Turn a GGUF file or a safetensors directory into an MLX model.

    A GGUF file (a path, a model in Ollama's store — $OLLAMA_MODELS or ~/.ollama/models — or in LM Studio's
    models folder) keeps its size class unless --quantize or --dtype says otherwise: Q2_K, Q3_K, Q4_x and
    IQ4 become MLX 4-bit, Q5_x 5-bit, Q6_K and Q8_0 8-bit (Q4_x, Q5_x and Q8_0 without loss), F16 and BF16
    stay so; a note on stderr says what was chosen, and a few greedy tokens check the result. A
    safetensors directory is converted with mlx-lm.
    """
    from mlxclaude.errors import UsageError
    from mlxclaude.models.gguf_import import is_store_ref

    if quantize == "gguf":
        raise UsageError("--quantize gguf is gone: a GGUF import keeps the file's own 4/8-bit blocks by default",
                         hint="leave --quantize out, or pass 4 or 8")
    if quantize not in (None, "4", "8"):
        raise UsageError(f"--quantize must be 4 or 8, not {quantize}")
    if dtype not in (None, "float16", "bfloat16", "float32"):
        raise UsageError(f"--dtype must be float16, bfloat16 or float32, not {dtype}")
    store = is_store_ref(source)
    path = Path(source).expanduser()
    console = _output.stderr_console()
    label = source if store else path.name
    with console.status(f"importing {label}…") as status:
        def progress(message: str) -> None:
            status.update(f"importing {label}: {message}…")

        def note(line: str) -> None:
            console.print(f"note: {line}", markup=False)

        if not store and path.is_dir():
            from mlxclaude.models.convert_import import import_safetensors_dir

            dest = import_safetensors_dir(path, name=name, quantize=int(quantize) if quantize else None,
                                          dtype=dtype, overwrite=force, progress=progress)
        else:
            from mlxclaude.models.gguf_import import import_gguf

            dest = import_gguf(source if store else path, name=name, quantize=quantize, dtype=dtype,
                               overwrite=force, verify=verify, progress=progress, note=note)
    console.print(f"[green]imported[/] {source} → {dest}")
    _output.echo(dest)


@models_app.command("list", cls=Command)
def list_models(as_json: JsonOption = False) -> None:
    """Local MLX models: the Hugging Face cache and imported models."""
    from rich.markup import escape

    from mlxclaude.models.catalog import list_models as catalog_list
    from mlxclaude.models.catalog import sight_of

    models = catalog_list()
    if as_json:
        _output.print_json([model.to_dict() for model in models])
        return
    if not models:
        _output.note("no local models yet: `mlxclaude models pull REPO` or `mlxclaude models import FILE.gguf`")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    # MEMORY: whether the weights fit in memory; whether Claude Code's prompt fits is `models check`'s verdict
    for column in ("NAME", "SIZE", "QUANT", "CONTEXT", "TOOLS", "VISION", "MEMORY", "SOURCE"):
        table.add_column(column)
    for model in models:
        fits = "[green]fits[/]" if model.fits_in_memory else "[red]too big[/]"
        table.add_row(model.name, size_label(model.size_bytes), model.quant or "-",
                      str(model.context_length or "-"), model.tool_format or "-", escape(sight_of(model)), fits,
                      model.source)
    _output.stdout_console().print(table)


@models_app.command("rm", cls=Command)
def remove(
    name: Annotated[str, typer.Argument(
        metavar="NAME", show_default=False, autocompletion=model_names,
        help="The model's full name as `models list` shows it, or its directory.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accept a partial name that matches one model.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Stop the daemon first when it serves this model.")] = False,
) -> None:
    """Remove a local model.

    The model the running daemon serves is refused; with --force the daemon is stopped first.
    """
    from mlxclaude.models.catalog import remove_model

    def stop_daemon(state) -> None:
        from mlxclaude.daemon import manager

        with _output.stderr_console().status(f"stopping the daemon (pid {state.pid})…"):
            manager.stop()
        _output.note(f"stopped the daemon (pid {state.pid}), which served {state.model}")

    removed = remove_model(name, allow_partial=yes, stop_daemon=stop_daemon if force else None)
    _output.note(f"removed {removed.name} ({size_label(removed.size_bytes)})")


@models_app.command("check", cls=Command)
def check(
    name: Annotated[str, typer.Argument(
        metavar="NAME", show_default=False, autocompletion=model_names,
        help="A name from `mlxclaude models list`, or a model directory.")],
    as_json: JsonOption = False,
) -> None:
    """Check that a model loads, calls tools, fits in memory and holds Claude Code's prompt.

    The check renders Claude Code's own prompt and tools through the chat template and counts them with
    the model's tokenizer; it exits 1 if the model is unfit for Claude Code (`run` and `up` then refuse it).
    """
    from mlxclaude.models.resolve import resolve

    report = run_check(name, resolve(name, pull=False).local_path(), as_json=as_json)
    if not report.fit_for_claude_code:
        raise typer.Exit(1)


STATUS_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def run_check(name: str, path: Path, *, as_json: bool):
    """Run `models check` on `path`: progress lines on stderr, the report as JSON on stdout with as_json."""
    from rich.text import Text

    from mlxclaude import logs
    from mlxclaude.models.check import check_model

    console = _output.stderr_console()

    def show(line) -> None:
        if not as_json:  # one print per line: the spinner redraws between prints, never inside one
            label = Text.from_markup(STATUS_STYLE.get(line.status, line.status))
            console.print(Text.assemble("  ", label, " " * (5 - len(line.status)), f" {line.name:<14} ",
                                        line.detail))

    if not as_json:
        console.print(f"checking [bold]{name}[/] ({path})")
    logs.configure(None, echo=False)  # the engine's log records are the daemon's, not this report's
    try:
        with console.status("checking…") as spinner:
            report = check_model(path, name=name, on_line=show,
                                 on_start=lambda step: spinner.update(f"checking {step}…"))
    finally:
        logs.configure(None, echo=True)
    if as_json:
        _output.print_json(report.to_dict())
    else:
        style = "green" if report.fit_for_claude_code else "red"
        console.print(f"[{style}]{report.verdict}[/]")
        if report.advice:
            _output.hint(report.advice)
    return report
