"""config.toml's [backends.NAME], [routes] and [fallbacks], validated into a RoutingConfig.

The top-level `model` is the built-in backend `local`. Every error names its table and key and says
what to write instead (UsageError with a hint), so a user can fix config.toml from the message alone.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Mapping, get_args

from mlxclaude.config.registry import BACKEND_KEY_REGISTRY, BACKEND_KEYS, BACKEND_KINDS
from mlxclaude.config.units import DURATION_EXAMPLES, parse_duration
from mlxclaude.errors import UsageError

BackendKind = Literal["mlx", "openai", "azure", "anthropic"]
KINDS: tuple[str, ...] = get_args(BackendKind)
assert KINDS == BACKEND_KINDS
LOCAL = "local"
DEFAULT_ROUTE = "*"
AZURE_DEFAULT_API_VERSION = BACKEND_KEY_REGISTRY["api_version"].default
DEFAULT_KEEP_ALIVE_S = BACKEND_KEY_REGISTRY["keep_alive"].default

# the keys a [backends.NAME] table may hold, for each kind (declared in config/registry.py)
_KEYS: dict[str, tuple[str, ...]] = {kind: tuple(key.name for key in BACKEND_KEYS if key.applies_to(kind))
                                     for kind in KINDS}
_ALL_KEYS = tuple(key.name for key in BACKEND_KEYS)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PREFIXES = ("sk-", "sk_", "key-", "ghp_", "hf_", "xai-", "gsk_", "pk-", "Bearer ")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    kind: BackendKind
    model: str | None = None          # mlx: model dir/repo id; openai: model id sent upstream (None: Claude Code's id
                                      # passes through); anthropic: optional override
    url: str | None = None            # openai/azure/anthropic; without a trailing "/"
    api_key_env: str | None = None    # the NAME of an environment variable (never the key itself)
    deployment: str | None = None     # azure
    api_version: str | None = None    # azure
    keep_alive_s: float | None = None  # mlx: unloaded after this long idle; None (local): never unloaded
    timeout_s: float = BACKEND_KEY_REGISTRY["timeout"].default
    drop_params: tuple[str, ...] = ()  # request params never sent to this backend
    cooldown_s: float = BACKEND_KEY_REGISTRY["cooldown"].default
    cooldown_after: int = BACKEND_KEY_REGISTRY["cooldown_after"].default


@dataclass(frozen=True)
class RoutingConfig:
    backends: Mapping[str, BackendSpec]          # always includes "local"
    routes: tuple[tuple[str, str], ...]          # (pattern, backend name) in file order; "*" always present
    fallbacks: Mapping[str, tuple[str, ...]]
    declared: bool = False                       # config.toml has a [routes] or [backends] table

    @property
    def uses_local(self) -> bool:
        """Whether a route or a fallback can reach `local`, the top-level model. Without one, and with routes
        that send everything elsewhere, the daemon runs with no local model at all."""
        return any(backend == LOCAL for _, backend in self.routes) or any(
            name == LOCAL or LOCAL in chain for name, chain in self.fallbacks.items())

    @property
    def configured(self) -> bool:
        """Whether config.toml declares routing ([routes] or [backends]), or this config routes beyond `local`."""
        return self.declared or len(self.backends) > 1 or self.routes != ((DEFAULT_ROUTE, LOCAL),)


def parse_routing(document: Mapping[str, Any], *, local_model: str | None) -> RoutingConfig:
    """The routing tables of config.toml's whole document (read_config()); raises UsageError."""
    backends: dict[str, BackendSpec] = {LOCAL: BackendSpec(name=LOCAL, kind="mlx", model=local_model)}
    for name, table in _table(document, "backends").items():
        if name == LOCAL:
            raise UsageError("[backends.local]: `local` is the built-in backend, the top-level `model`",
                             hint="set the top-level `model = \"…\"` for it, or give this backend another name")
        if not name.strip():
            raise UsageError("[backends]: a backend needs a name", hint="write [backends.NAME], e.g. [backends.gpu]")
        if not isinstance(table, Mapping):
            raise UsageError(f"[backends]: {name} must be a table, got {_type(table)}",
                             hint=f'write it as [backends.{name}] with kind = "…" and its keys under it')
        backends[name] = _backend(name, table)

    routes: list[tuple[str, str]] = []
    for pattern, target in _table(document, "routes").items():
        where = f"[routes] {_quote(pattern)}"
        if not pattern.strip():
            raise UsageError(f"{where}: a route needs a pattern",
                             hint='use a Claude Code model id or a glob such as "*haiku*"; "*" is the default')
        if not isinstance(target, str):
            raise UsageError(f"{where}: expected a backend name, got {_type(target)}",
                             hint=f'write {_quote(pattern)} = "NAME"; backends: {_names(backends)}')
        _check_exists(where, target, backends)
        routes.append((pattern, target))
    if not any(pattern == DEFAULT_ROUTE for pattern, _ in routes):
        routes.append((DEFAULT_ROUTE, LOCAL))

    fallbacks: dict[str, tuple[str, ...]] = {}
    for name, chain in _table(document, "fallbacks").items():
        where = f"[fallbacks] {name}"
        _check_exists("[fallbacks]", name, backends)
        if not isinstance(chain, list) or not all(isinstance(item, str) for item in chain):
            raise UsageError(f"{where}: expected a list of backend names, got {_type(chain)}",
                             hint=f'write {name} = ["NAME", …]; backends: {_names(backends)}')
        for item in chain:
            if item == name:
                raise UsageError(f"{where}: {name} cannot fall back to itself",
                                 hint=f"list other backends: {_names(backends, without=name)}")
            _check_exists(where, item, backends)
        fallbacks[name] = tuple(dict.fromkeys(chain))

    return RoutingConfig(backends=MappingProxyType(backends), routes=tuple(routes),
                         fallbacks=MappingProxyType(fallbacks),
                         declared="routes" in document or "backends" in document)


def _backend(name: str, table: Mapping[str, Any]) -> BackendSpec:
    where = f"[backends.{_key(name)}]"
    kind = table.get("kind")
    if kind is None:
        raise UsageError(f"{where}: kind is required", hint=f"set kind to one of {_kinds()}")
    if kind not in KINDS:
        raise UsageError(f"{where}: unknown kind {kind!r}", hint=f"use one of {_kinds()}")
    allowed = _KEYS[kind]
    for key in table:
        if key in allowed:
            continue
        if key == "keep_alive":
            raise UsageError(f"{where}: keep_alive applies only to kind \"mlx\"",
                             hint=f'a {kind} backend is not loaded here: remove keep_alive')
        if key in _ALL_KEYS:
            kinds = ", ".join(f'"{other}"' for other in KINDS if key in _KEYS[other])
            raise UsageError(f"{where}: {key} does not apply to kind \"{kind}\" (only to {kinds})",
                             hint=f"remove it; kind \"{kind}\" takes: {', '.join(allowed)}")
        close = difflib.get_close_matches(key, allowed, n=1)
        raise UsageError(f"{where}: unknown key {key!r}",
                         hint=f"did you mean {close[0]!r}?" if close else f"kind \"{kind}\" takes: {', '.join(allowed)}")

    def text(key: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: {key} must be a non-empty string, got {value!r}",
                             hint=f'write {key} = "…"')
        return value.strip()

    def required(key: str, example: str) -> str:
        value = text(key)
        if value is None:
            raise UsageError(f"{where}: {key} is required for kind \"{kind}\"", hint=f'add {key} = "{example}"')
        return value

    for declared in BACKEND_KEYS:
        if kind in declared.required_for and declared.type != "url":
            required(declared.name, declared.example)

    def duration(key: str, default: float, *, positive: bool) -> float:
        if key not in table:
            return default
        try:
            seconds = parse_duration(table[key])
        except ValueError:
            raise UsageError(f"{where}: invalid {key} {table[key]!r}",
                             hint=f"use a duration: {DURATION_EXAMPLES}") from None
        if positive and seconds <= 0:
            raise UsageError(f"{where}: {key} must be more than 0, got {table[key]!r}",
                             hint=f"use a duration: {DURATION_EXAMPLES}")
        return seconds

    url = None
    if kind != "mlx":
        url = required("url", {"openai": "http://HOST:8000/v1", "azure": "https://NAME.openai.azure.com",
                               "anthropic": "https://HOST"}[kind])
        if not re.match(r"https?://[^/\s]", url, re.IGNORECASE):
            raise UsageError(f"{where}: url must start with http:// or https://, got {url!r}",
                             hint='write the whole address, e.g. url = "http://gpu-box:8000/v1"')
        url = url.rstrip("/")

    api_key_env = text("api_key_env")
    if api_key_env is not None and (api_key_env.startswith(_KEY_PREFIXES) or not _ENV_NAME.fullmatch(api_key_env)):
        raise UsageError(f"{where}: api_key_env must be the NAME of an environment variable, not the key",
                         hint="export the key, e.g. `export GPU_API_KEY=…`, and write api_key_env = \"GPU_API_KEY\""
                              " (config.toml never holds the key itself)")

    drop_params = table.get("drop_params", [])
    if not isinstance(drop_params, list) or not all(isinstance(item, str) and item for item in drop_params):
        raise UsageError(f"{where}: drop_params must be a list of parameter names, got {drop_params!r}",
                         hint='e.g. drop_params = ["top_k", "thinking"]')

    cooldown_after = table.get("cooldown_after", BackendSpec.cooldown_after)
    if isinstance(cooldown_after, bool) or not isinstance(cooldown_after, int) or cooldown_after < 1:
        raise UsageError(f"{where}: cooldown_after must be a whole number of failures, at least 1, "
                         f"got {cooldown_after!r}", hint="e.g. cooldown_after = 2")

    return BackendSpec(
        name=name,
        kind=kind,
        model=required("model", "mlx-community/…") if kind == "mlx" else text("model"),
        url=url,
        api_key_env=api_key_env,
        deployment=required("deployment", "gpt-4o") if kind == "azure" else None,
        api_version=(text("api_version") or AZURE_DEFAULT_API_VERSION) if kind == "azure" else None,
        keep_alive_s=duration("keep_alive", DEFAULT_KEEP_ALIVE_S, positive=False) if kind == "mlx" else None,
        timeout_s=duration("timeout", BackendSpec.timeout_s, positive=True),
        drop_params=tuple(dict.fromkeys(drop_params)),
        cooldown_s=duration("cooldown", BackendSpec.cooldown_s, positive=False),
        cooldown_after=cooldown_after,
    )


def _table(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, Mapping):
        raise UsageError(f"[{name}] must be a table, got {_type(table)}",
                         hint=f"write it as a [{name}] section, not `{name} = …`")
    return table


def _check_exists(where: str, name: str, backends: Mapping[str, BackendSpec]) -> None:
    if name not in backends:
        close = difflib.get_close_matches(name, list(backends), n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"{where}: no backend named {name!r}",
                         hint=f"{guess}backends: {_names(backends)} (declare others as [backends.NAME])")


def _names(backends: Mapping[str, Any], without: str | None = None) -> str:
    return ", ".join(name for name in backends if name != without) or "(none)"


def _kinds() -> str:
    return ", ".join(f'"{kind}"' for kind in KINDS)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _quote(name)


def _type(value: Any) -> str:
    return {list: "a list", dict: "a table", str: "a string", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
