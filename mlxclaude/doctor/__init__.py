"""`mlxclaude doctor`: checks that say ok / warn / fail, each with the fix. Nothing here loads weights.

Heavy or slow things (mlx, httpx, subprocesses) are imported or run inside the checks that need them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional
from urllib.parse import urlparse

from mlxclaude import paths
from mlxclaude.config.units import format_bytes
from mlxclaude.daemon.state import is_our_daemon, load_state_file, pid_alive
from mlxclaude.engine.memory import MemoryFacts, memory_facts
from mlxclaude.errors import MlxClaudeError

Status = Literal["ok", "warn", "fail"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CLAUDE_INSTALL = "npm install -g @anthropic-ai/claude-code (or set MLXCLAUDE_CLAUDE_BIN to its path)"
WIRE_HINT = "`mlxclaude run` wires each launch itself"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(environ: Optional[Mapping[str, str]] = None) -> list[Check]:
    """Every check, in the order a user fixes things. One check failing never stops the others."""
    from mlxclaude.doctor import routes
    from mlxclaude.doctor.web_search import check_web_search

    environ = os.environ if environ is None else environ
    settings, config_check = _load_settings(environ)
    checks = [
        config_check,
        _guard("python", check_python),
        _guard("mlx", check_mlx),
        _guard("memory", check_memory),
        _guard("model", lambda: check_model(settings.model, context_limit=settings.context_limit) if settings else
               Check("model", "warn", "not checked: config.toml is invalid", config_check.fix)),
        *_guard_all("routes", lambda: routes.backend_checks(settings, environ)),
        _guard("web search", check_web_search),
        _guard("daemon", check_daemon),
        _guard("claude", lambda: check_claude(environ)),
        _guard("claude settings", lambda: check_claude_settings(settings)),
    ]
    return checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(check.status == "fail" for check in checks) else 0


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a broken check is reported, never a traceback
        return _broken(name, exc)


def _broken(name: str, exc: Exception) -> Check:
    return Check(name, "warn", f"check could not run: {exc!r}", "report this with `MLXCLAUDE_DEBUG=1`")


def _guard_all(name: str, checks: Callable[[], list[Check]]) -> list[Check]:
    """_guard for a function that gives several checks."""
    try:
        return checks()
    except Exception as exc:
        return [_broken(name, exc)]


def _load_settings(environ: Mapping[str, str]) -> tuple[Any, Check]:
    from mlxclaude.config.load import load_settings

    path = paths.config_file()
    try:
        resolved = load_settings(environ)
    except MlxClaudeError as exc:
        return None, Check("config", "fail", exc.message, exc.hint or f"fix or remove {path}")
    note = str(path) if path.exists() else f"{path} (not created; defaults in use)"
    return resolved.settings, Check("config", "ok", note)


# --- python, mlx, memory -------------------------------------------------------------------------


def check_python(version_info: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    version = ".".join(str(part) for part in version_info[:3])
    if tuple(version_info[:2]) >= (3, 11):
        return Check("python", "ok", f"{version} ({sys.executable})")
    return Check("python", "fail", f"{version} is too old", "install Python 3.11 or newer")


def _package_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_mlx() -> Check:
    from mlxclaude.engine.device import device_facts

    try:
        facts = device_facts()
    except Exception as exc:
        extra = "mlx" if sys.platform == "darwin" else "'mlx[cpu]' (or 'mlx[cuda]' with an NVIDIA GPU)"
        return Check("mlx", "fail", f"cannot import mlx: {exc}", f"pip install {extra}")
    versions = f"mlx {_package_version('mlx') or '?'}"
    mlx_lm = _package_version("mlx-lm")
    if mlx_lm is None:
        return Check("mlx", "fail", f"{facts.backend} ({versions}) but mlx-lm is not installed", "pip install mlx-lm")
    detail = f"{facts.backend} ({versions}, mlx-lm {mlx_lm}; default device {facts.device})"
    if facts.backend != "CPU":
        return Check("mlx", "ok", detail)
    if sys.platform == "darwin":
        fix = "use a native arm64 Python (not one running under Rosetta) on Apple silicon"
        if platform.machine() != "arm64":
            fix = "mlxclaude needs Apple silicon for Metal; an Intel Mac runs MLX on the CPU only"
        return Check("mlx", "warn", detail + ": Metal is not available, generation will be slow", fix)
    if shutil.which("nvidia-smi"):
        return Check("mlx", "warn", detail + ": an NVIDIA GPU is present but unused", "pip install 'mlx[cuda]'")
    return Check("mlx", "ok", detail + "; no GPU backend, so generation is slow")


GIB = 1024**3


def check_memory(facts: Optional[MemoryFacts] = None) -> Check:
    facts = facts if facts is not None else memory_facts()
    total, available = facts.total_bytes, facts.available_bytes
    if total is None:
        return Check("memory", "warn", "cannot tell how much memory this machine has")
    detail = f"{format_bytes(total)} total"
    if available is not None:
        detail += f", {format_bytes(available)} available"
    if total < 8 * GIB:
        return Check("memory", "warn", detail + ": only the smallest models fit",
                     "pick a small 4-bit model (e.g. a 1.5B-3B one)")
    if available is not None and available < 2 * GIB:
        return Check("memory", "warn", detail + ": little is free", "close memory-hungry apps before `mlxclaude up`")
    return Check("memory", "ok", detail)


# --- the model -----------------------------------------------------------------------------------


def local_model_dir(model: str) -> Optional[Path]:
    """The local directory `model` names (a path, a name from `models list`, a cached repo id); None if absent."""
    from mlxclaude.models.resolve import resolve

    try:
        return resolve(model, pull=False).path
    except MlxClaudeError:
        return None


def check_model(model: Optional[str], total_memory: Optional[int] = None, *,
                context_limit: Optional[int] = None) -> Check:
    """The configured model: its files, whether Claude Code's prompt fits its context (the verdict `models
    check`, `run` and `up` give: models/context_fit.py, from the tokenizer alone), and its size."""
    if not model:
        from mlxclaude.daemon.routes import needs_local_model

        try:
            remote_only = not needs_local_model(None)
        except MlxClaudeError:
            remote_only = False  # the routes check says what is wrong with the tables
        if remote_only:
            return Check("model", "ok", "none: every route goes to a remote backend (see the routes check)")
        return Check("model", "warn", "no model configured",
                     "mlxclaude config set model ORG/NAME (a local mlx-lm directory works too)")
    directory = local_model_dir(model)
    if directory is None:
        from mlxclaude.models.resolve import is_repo_id

        fix = f"mlxclaude models pull {model}" if is_repo_id(model) else "mlxclaude config set model PATH_OR_REPO"
        return Check("model", "fail", f"{model}: not found locally", fix)
    config_file = directory / "config.json"
    if not config_file.is_file():
        return Check("model", "fail", f"{directory} has no config.json", "point model at an mlx-lm model directory")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        return Check("model", "fail", f"{config_file} is not valid JSON: {exc}", f"mlxclaude models pull {model}")
    weights = sum(path.stat().st_size for path in directory.glob("*.safetensors"))
    if weights == 0:
        return Check("model", "fail", f"{directory} has no .safetensors weights",
                     "pull or convert the model again (mlx-lm format)")
    facts = [str(config.get("model_type") or "unknown type")]
    bits = (config.get("quantization") or {}).get("bits") if isinstance(config.get("quantization"), dict) else None
    if bits:
        facts.append(f"{bits}-bit")
    facts.append(f"{format_bytes(weights)} of weights")
    detail = f"{model} ({', '.join(facts)})"
    if not any((directory / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        return Check("model", "fail", detail + ": no tokenizer files", f"mlxclaude models pull {model}")
    from mlxclaude.models.context_fit import fit_without_loading

    fit = fit_without_loading(directory, name=model, context_limit=context_limit)
    if fit is not None and fit.status != "ok":
        return Check("model", fit.status, f"{detail}: {fit.detail()}", fit.advice("mlxclaude run") if not fit.fits
                     else "a model with a longer context leaves Claude Code room to work")
    if fit is not None:
        detail += f"; Claude Code's prompt fits ({fit.needed:,} of {fit.available:,} tokens)"
    total = total_memory if total_memory is not None else memory_facts().total_bytes
    if total and weights > 0.75 * total:
        return Check("model", "warn", detail + f": too big for {format_bytes(total)} of memory",
                     "choose a smaller or more quantized model")
    return Check("model", "ok", detail)


# --- the daemon ----------------------------------------------------------------------------------


def check_daemon(path: Optional[Path] = None, timeout: float = 1.5) -> Check:
    from mlxclaude.daemon import client

    path = path if path is not None else paths.state_file()
    state = load_state_file(path)
    if state is None:
        if path.exists():
            return Check("daemon", "warn", f"unreadable state file {path}", "mlxclaude down, then mlxclaude up")
        return Check("daemon", "ok", "not running (`mlxclaude up` starts it)")
    pid, url = state.pid, state.url.rstrip("/")
    health = client.health(url, timeout=timeout)
    if health is None:
        if is_our_daemon(pid):
            return Check("daemon", "warn", f"pid {pid} is alive but {url} does not answer", "mlxclaude restart")
        gone = "is gone" if not pid_alive(pid) else "is not the mlxclaude daemon"
        return Check("daemon", "warn", f"stale state file: pid {pid} {gone}", "mlxclaude up (it replaces the file)")
    status, model = health["status"], health.get("model") or state.model or "?"
    if health["http_status"] == 200:
        return Check("daemon", "ok", f"running at {url} (pid {pid}, model {model})")
    if status == "loading":
        return Check("daemon", "ok", f"loading {model} at {url} (pid {pid})")
    if status == "failed":
        return Check("daemon", "fail", f"the model failed to load: {health.get('error', '?')}",
                     "mlxclaude logs --level error, then mlxclaude restart")
    shown = status if status != "unknown" else f"HTTP {health['http_status']}"
    return Check("daemon", "warn", f"{url}/health answered {shown}", "mlxclaude restart")


# --- Claude Code ---------------------------------------------------------------------------------


def find_claude_binary() -> Optional[str]:
    """Where `mlxclaude run` would find claude (MLXCLAUDE_CLAUDE_BIN, PATH, the usual install places)."""
    from mlxclaude.claude import find_claude

    found = find_claude()
    return str(found) if found else None


def check_claude(environ: Mapping[str, str]) -> Check:
    binary = find_claude_binary()
    if binary is None:
        return Check("claude", "fail", "Claude Code (`claude`) not found", CLAUDE_INSTALL)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return Check("claude", "fail", f"{binary} is not an executable file", CLAUDE_INSTALL)
    env = dict(environ)
    env.update({"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"})
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20,
                                stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("claude", "warn", f"{binary} --version failed: {exc}", CLAUDE_INSTALL)
    version = (result.stdout.strip().splitlines() or [""])[0]
    if result.returncode != 0 or not version:
        message = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return Check("claude", "warn", f"{binary} --version failed: {message}", CLAUDE_INSTALL)
    return Check("claude", "ok", f"{version} ({binary})")


def check_claude_settings(settings: Any = None) -> Check:
    """Claude Code's user settings.json, read as `mlxclaude settings` reads it (CLAUDE_CONFIG_DIR honoured)."""
    from mlxclaude.claude.jsonfile import parse_settings, read_bytes
    from mlxclaude.claude.settings_file import settings_path

    path = settings_path()
    hint = WIRE_HINT
    try:
        raw = read_bytes(path)
        data = parse_settings(path, raw) if raw is not None else None
    except MlxClaudeError as exc:
        return Check("claude settings", "warn", f"cannot read {exc.message}", "fix the JSON in that file")
    if data is None:
        return Check("claude settings", "ok", f"not wired ({path} does not exist); {hint}")
    env = data.get("env") or {}
    base_url = env.get("ANTHROPIC_BASE_URL")
    if not base_url:
        return Check("claude settings", "ok", f"not wired (no env.ANTHROPIC_BASE_URL in {path}); {hint}")
    parsed = urlparse(str(base_url))
    if parsed.hostname not in LOCAL_HOSTS and f"[{parsed.hostname}]" not in LOCAL_HOSTS:
        return Check("claude settings", "ok",
                     f"{path} points Claude Code at {base_url}, not mlxclaude; `mlxclaude run` overrides it per launch")
    expected_port = _expected_port(settings)
    if expected_port is not None and parsed.port not in (expected_port, None):
        return Check("claude settings", "warn",
                     f"{path} points at port {parsed.port} but mlxclaude serves on {expected_port}",
                     f"set env.ANTHROPIC_BASE_URL to http://127.0.0.1:{expected_port} in {path}")
    token = env.get("ANTHROPIC_AUTH_TOKEN") or env.get("ANTHROPIC_API_KEY")
    if not token:
        return Check("claude settings", "warn", f"{path} points at {base_url} but sets no ANTHROPIC_AUTH_TOKEN",
                     "set env.ANTHROPIC_AUTH_TOKEN to the output of `mlxclaude config get auth_token`")
    expected_token = _expected_token(settings)
    if expected_token is not None and token != expected_token:
        return Check("claude settings", "warn", f"{path} sends a token the daemon will refuse",
                     "set env.ANTHROPIC_AUTH_TOKEN to the output of `mlxclaude config get auth_token`")
    return Check("claude settings", "ok", f"wired: {path} points Claude Code at {base_url}")


def _expected_port(settings: Any) -> Optional[int]:
    state = load_state_file()
    if state is not None and state.port:
        return state.port
    port = getattr(settings, "port", None)
    return port or None


def _expected_token(settings: Any) -> Optional[str]:
    """The token the daemon requires (the running one's, else the configured or generated one), never creating one."""
    state = load_state_file()
    if state is not None and state.token:
        return str(state.token)
    token = getattr(settings, "auth_token", None)
    if token:
        return str(token)
    from mlxclaude.config.token import token_file

    try:
        return token_file().read_text().strip() or None
    except OSError:
        return None
