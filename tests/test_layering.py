"""Which part of mlxclaude may import what: one table, checked statically on every module.

Every `import` and `from … import` is read with `ast`, at module level and inside functions (a lazy
import is still a dependency), along with `importlib.import_module("…")`, `__import__("…")` and
`sys.modules["…"]` / `sys.modules.get("…")` on a literal name. The standard library is always
allowed, and so are the package root (`mlxclaude/__init__.py`: the version) and `errors.py`.

How fast the CLI starts (what `mlxclaude --help` imports at run time) is a different concern:
tests/cli/test_startup_imports.py checks `sys.modules` in a fresh interpreter.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlxclaude"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
ALWAYS = frozenset({"__init__", "errors"})


@dataclass(frozen=True)
class Layer:
    internal: frozenset[str] = field(default_factory=frozenset)  # layers ("daemon") or one module ("daemon.state")
    external: frozenset[str] = field(default_factory=frozenset)  # third-party top-level import names


def layer(internal: str = "", external: str = "") -> Layer:
    return Layer(frozenset(internal.split()), frozenset(external.split()))


# One entry per top-level package or module of mlxclaude/ (docs/design.md, "Layout"). A dotted entry
# ("engine.memory") is a stricter rule for one module or subpackage: the longest entry that names a file wins,
# and it allows no other part of its own layer unless it says so.
LAYERS: dict[str, Layer] = {
    # the base every layer may stand on
    "__init__": layer(),
    "errors": layer(),
    "atomic": layer(),
    "paths": layer(external="platformdirs"),
    "redaction": layer(),
    "logs": layer("atomic redaction"),
    "config": layer("atomic paths protocol.limits"),
    # PURE: translation and parsing only; no mlx, no web framework, no HTTP client, no terminal UI, no files
    "parsing": layer(),
    "protocol": layer("parsing redaction", external="pydantic pypdf"),
    "routing": layer("protocol config.units config.registry"),
    # the only place mlx and mlx_lm are imported
    "engine": layer("parsing protocol atomic logs",
                    external="mlx mlx_lm mlx_vlm PIL numpy llguidance tokenizers gguf"),
    # the machine's memory facts, which models/ and doctor use without loading mlx
    "engine.memory": layer(),
    # remote serving engines over HTTP
    "upstream": layer("parsing protocol routing config logs redaction", external="httpx"),
    # web search for the web_search server tool: its config (pure) and providers over HTTP
    "websearch": layer("protocol config logs redaction", external="httpx"),
    # the HTTP server: never models/ (the loader is passed in), never the CLI or the daemon
    "server": layer("engine protocol parsing routing upstream config logs redaction websearch",
                    external="fastapi starlette anyio prometheus_client"),
    # the model store: catalog, pull, import front-ends, check, recommend (through engine/ APIs: no mlx)
    "models": layer("engine parsing protocol config paths daemon.state", external="huggingface_hub tqdm"),
    "claude": layer("atomic paths"),
    "codex": layer(),
    # state file, admin client (a loopback call needs no HTTP library), start/stop, the one serve path
    # (which hands models/' loader to server/)
    "daemon": layer("server engine models config routing atomic paths logs websearch", external="uvicorn h11"),
    "doctor": layer("claude config daemon engine models paths routing upstream websearch"),
    # thin commands; the only place that draws on the terminal
    "cli": layer("claude codex config daemon doctor models paths routing logs", external="typer rich"),
}

# Imports that break the table today and are to be fixed (issue G, "one way to do each thing"). An entry
# names a file, or every file under a folder ("cli/"), and what it may not import. Delete an entry once
# its imports are gone: test_known_violation_still_exists fails for an entry that no longer applies.
UNLISTED = "(not in LAYERS)"
KNOWN_VIOLATIONS: list[tuple[str, str]] = [
]


def covers(entry: tuple[str, str], key: tuple[str, str]) -> bool:
    """Whether a KNOWN_VIOLATIONS entry covers a broken (file, target) pair."""
    (where, what), (module, target) = entry, key
    return target == what and (module == where or where.endswith("/") and module.startswith(where))


@dataclass(frozen=True)
class Import:
    module: str          # the importing file, relative to mlxclaude/
    line: int
    name: str            # the dotted name imported


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    """A module or package of mlxclaude/ (`from mlxclaude.x import y` imports module y when it exists)."""
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def literal_prefix(node: ast.expr) -> str | None:
    """"mlx.core" from a string literal; "mlx_lm.models." from f"mlx_lm.models.{name}"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return None


def is_sys_modules(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def imported_names(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted name) for everything `path` imports or looks up in sys.modules; `package` is the one
    its relative imports start from (by default, where it lies under mlxclaude/)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if is_module(candidate) else base))
        elif isinstance(node, ast.Call):
            func = node.func
            dynamic = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")
                       or isinstance(func, ast.Attribute) and func.attr == "import_module"
                       or isinstance(func, ast.Attribute) and func.attr == "get" and is_sys_modules(func.value))
            name = literal_prefix(node.args[0]) if dynamic and node.args else None
            if name:
                found.append((node.lineno, name.rstrip(".")))
        elif isinstance(node, ast.Subscript) and is_sys_modules(node.value):
            name = literal_prefix(node.slice)
            if name:
                found.append((node.lineno, name.rstrip(".")))
    return found


def unit_of(relative: Path) -> str:
    """The layer of a file: its top-level package, or its own name for a top-level module."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def row_of(relative: Path) -> str | None:
    """The LAYERS entry that rules a file: the longest one naming it, its module or a package above it."""
    parts = relative.with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return ".".join(parts[:end])
    return "__init__" if not parts else None


def scan() -> dict[tuple[str, str], list[Import]]:
    """Every import that breaks the table, keyed by (importing file, what it imports: a layer or a
    third-party name, or UNLISTED for a file whose layer is not in LAYERS)."""
    broken: dict[tuple[str, str], list[Import]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        unit, row = unit_of(relative), row_of(relative)
        if row is None:
            broken.setdefault((relative.as_posix(), UNLISTED), []).append(Import(relative.as_posix(), 1, unit))
            continue
        rules = LAYERS[row]
        for line, name in imported_names(path):
            top = name.split(".")[0]
            if top in STDLIB:
                continue
            if top == "mlxclaude":
                inner = name.split(".")[1:]
                target = inner[0] if inner and is_module(f"mlxclaude.{inner[0]}") else "__init__"
                dotted = ".".join(inner)
                if target == row or target in ALWAYS or any(
                        dotted == allowed or dotted.startswith(allowed + ".") for allowed in rules.internal):
                    continue
            else:
                target = top
                if top in rules.external:
                    continue
            broken.setdefault((relative.as_posix(), target), []).append(Import(relative.as_posix(), line, name))
    return broken


def describe(key: tuple[str, str], imports: list[Import]) -> str:
    module, target = key
    if target == UNLISTED:
        return f"mlxclaude/{module}: its layer {imports[0].name!r} is not in LAYERS (add it and what it may import)"
    row = row_of(Path(module))
    lines = sorted({(item.line, item.name) for item in imports})
    where = ", ".join(f"line {line} ({name})" for line, name in lines)
    return f"mlxclaude/{module} may not import {target!r} (LAYERS[{row!r}]): {where}"


@pytest.fixture(scope="module")
def broken() -> dict[tuple[str, str], list[Import]]:
    return scan()


def test_imports_follow_the_layer_table(broken):
    unexpected = [describe(key, imports) for key, imports in broken.items()
                  if not any(covers(entry, key) for entry in KNOWN_VIOLATIONS)]
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.parametrize("entry", [pytest.param(item, id=f"{item[0]}->{item[1]}") for item in KNOWN_VIOLATIONS])
def test_known_violation_still_exists(broken, entry):
    assert any(covers(entry, key) for key in broken), \
        f"{entry[0]} no longer imports {entry[1]!r}: delete it from KNOWN_VIOLATIONS"


def test_the_table_names_only_its_own_layers():
    named = {entry.split(".")[0] for rules in LAYERS.values() for entry in rules.internal}
    assert named <= LAYERS.keys(), named - LAYERS.keys()
    assert all(not (rules.external & STDLIB) for rules in LAYERS.values())


def test_the_scanner_sees_lazy_relative_and_dynamic_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "from . import tools\n"
        "from .tools import hermes\n"
        "def f():\n"
        "    import mlx.core as mx\n"
        "    from mlx_lm.generate import generate_step\n"
        "    import importlib\n"
        "    importlib.import_module(f'mlx_lm.models.{name}')\n"
        "    return sys.modules.get('fastapi'), sys.modules['httpx']\n"
    )
    names = [name for _, name in imported_names(probe, package="mlxclaude.parsing")]
    assert names == ["sys", "mlxclaude.parsing.tools", "mlxclaude.parsing.tools.hermes", "mlx.core",
                     "mlx_lm.generate", "importlib", "mlx_lm.models", "fastapi", "httpx"]


def test_the_longest_entry_rules_a_file():
    assert row_of(Path("engine/memory.py")) == "engine.memory"
    assert row_of(Path("engine/cache/kv.py")) == "engine"
    assert row_of(Path("paths.py")) == "paths" and row_of(Path("__init__.py")) == "__init__"
    assert row_of(Path("nowhere/module.py")) is None
