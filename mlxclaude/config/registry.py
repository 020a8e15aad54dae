"""The one registry of settings: what each is, its type, default and description, and ServerSettings.

Precedence, lowest first: built-in defaults < config.toml < MLXCLAUDE_* environment < CLI flags
(config/load.py). `SETTINGS` lists every setting once: `config show`, `config set`, validation and the
README table all read it. Only the standard library is imported here.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from mlxclaude.config.units import format_bytes, parse_bytes
from mlxclaude.errors import UsageError
from mlxclaude.protocol.limits import MAX_BODY_BYTES

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ENV_PREFIX = "MLXCLAUDE_"
Source = Literal["default", "config", "env", "flag"]
SettingType = Literal["str", "int", "float", "bool", "choice", "bytes"]
NULL_WORDS = {"none", "null", "auto"}


@dataclass(frozen=True)
class Setting:
    """One setting: its name is the config.toml key; its env var is MLXCLAUDE_<NAME>."""

    name: str
    type: SettingType
    default: Any
    description: str
    nullable: bool = False
    choices: tuple[str, ...] = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    secret: bool = False
    unset_label: str = "(none)"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def type_label(self) -> str:
        label = "|".join(self.choices) if self.type == "choice" else self.type
        return f"{label}?" if self.nullable else label

    def coerce(self, value: object) -> Any:
        """Value from TOML (typed) or from text (env, `config set`); raises ValueError saying what was expected."""
        if isinstance(value, str):
            text = value.strip()
            if self.nullable and self.type != "str" and (text == "" or text.lower() in NULL_WORDS):
                return None
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"expected {self._expected()}")
        result = self._coerce(value)
        self._check_range(result)
        return result

    def _coerce(self, value: object) -> Any:
        expected = self._expected()
        if self.type == "str":
            if isinstance(value, os.PathLike):
                return os.fspath(value)
            if not isinstance(value, str):
                raise ValueError(f"expected {expected}, got {value!r}")
            return value
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.strip().lower()]
            raise ValueError(f"expected {expected}, got {value!r}")
        if self.type == "choice":
            if isinstance(value, str) and value.strip().lower() in self.choices:
                return value.strip().lower()
            raise ValueError(f"expected {expected}, got {value!r}")
        if isinstance(value, bool):
            raise ValueError(f"expected {expected}, got {value!r}")
        if self.type == "int":
            if isinstance(value, int):
                return value
            if isinstance(value, str) and re.fullmatch(r"[+-]?\d[\d_]*", value.strip()):
                return int(value.strip().replace("_", ""))
            raise ValueError(f"expected {expected}, got {value!r}")
        if self.type == "float":
            if isinstance(value, (int, float)):
                result = float(value)
            else:
                try:
                    result = float(str(value).strip().replace("_", ""))
                except ValueError:
                    raise ValueError(f"expected {expected}, got {value!r}") from None
            if not math.isfinite(result):
                raise ValueError(f"expected a finite number, got {value!r}")
            return result
        if self.type == "bytes":
            return parse_bytes(value)
        raise AssertionError(self.type)

    def _check_range(self, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {_number(self.minimum)}, got {_number(value)}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {_number(self.maximum)}, got {_number(value)}")

    def _expected(self) -> str:
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "choice": "one of " + ", ".join(self.choices),
            "bytes": "a size in bytes (8589934592, 8GiB, 512MB)",
        }[self.type]

    def display(self, value: Any) -> str:
        """The value as `config show` prints it (secrets masked)."""
        if value is None:
            return self.unset_label
        if self.secret:
            return mask_secret(str(value))
        if self.type == "bytes":
            return f"{value} ({format_bytes(value)})"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


SETTINGS: tuple[Setting, ...] = (
    Setting("model", "str", None, nullable=True, unset_label="(none)",
            description="Model to serve: a Hugging Face repo id (org/name) or an mlx-lm model directory."),
    Setting("host", "str", "127.0.0.1",
            description="Address the daemon binds. Any non-loopback address requires auth_token."),
    Setting("port", "int", 8765, minimum=0, maximum=65535,
            description="Port the daemon binds (0 picks a free port)."),
    Setting("auth_token", "str", None, nullable=True, secret=True, unset_label="(generated)",
            description="Token clients must send (x-api-key or Bearer). Unset: `up` and `run` use a token "
                        "generated once and kept in the config dir (0600); `serve` on loopback checks none."),
    Setting("context_limit", "int", None, nullable=True, minimum=1, unset_label="(model's own)",
            description="Cap on the context window, in tokens."),
    Setting("max_output_tokens", "int", None, nullable=True, minimum=1, unset_label="(no cap)",
            description="Cap on every reply's max_tokens."),
    Setting("max_tokens_policy", "choice", "clamp", choices=("clamp", "error"),
            description="When prompt + max_tokens exceeds the context: clamp max_tokens, or answer 400 "
                        "with the wording Claude Code retries on."),
    Setting("ping_interval", "float", 10.0, minimum=0.1,
            description="Seconds between SSE pings while the model sends nothing (a long prefill, say)."),
    Setting("max_queue", "int", 16, minimum=1,
            description="Requests that may wait for the model; more are answered 529 overloaded."),
    Setting("max_batch", "int", 8, minimum=1,
            description="Requests generated together (continuous batching); the interactive main turn is "
                        "admitted first when the batch is full. 1: one at a time."),
    Setting("max_body_bytes", "bytes", MAX_BODY_BYTES, minimum=1024,
            description="Largest request body accepted; a larger one is answered 413 request_too_large "
                        "before it is read."),
    Setting("header_timeout", "float", 30.0, minimum=0.1,
            description="Seconds a client has to send a request's headers; a slower one is disconnected "
                        "(a client that trickles them would hold its connection forever)."),
    Setting("body_timeout", "float", 120.0, minimum=0.1,
            description="Seconds a client has to send a request's whole body; a slower one is answered "
                        "408 and disconnected."),
    Setting("prefill_step_size", "int", 2048, minimum=1,
            description="Prompt tokens per prefill step: larger is faster and uses more memory. An eighth of it "
                        "while other requests share the batch, so their tokens keep coming."),
    Setting("cache_max_bytes", "bytes", None, nullable=True, minimum=0, unset_label="(auto)",
            description="Byte cap for the prompt (KV) cache, e.g. 8GiB. Unset: sized from available memory."),
    Setting("image_backend", "str", None, nullable=True, unset_label="(placeholders)",
            description="The backend ([backends.NAME]) that serves a request carrying images when the routed "
                        "one cannot see them. Unset: each image becomes a short text placeholder."),
    Setting("speculative", "choice", "auto", choices=("auto", "off", "lookup", "draft", "mtp"),
            description="Speculative decoding of a request that decodes alone: drafts from prompt lookup (what "
                        "followed the same tokens earlier) or draft_model, checked in one forward. auto: only "
                        "while it pays, measured; lookup: prompt lookup, always; draft: draft_model, always; "
                        "mtp: the model's own multi-token-prediction head (mlx-lm cannot run one yet: runs as "
                        "auto, logged); off: never. The output is the same either way."),
    Setting("draft_model", "str", None, nullable=True, unset_label="(none)",
            description="A small model with the main model's tokenizer that drafts tokens for speculative "
                        "decoding (speculative = auto or draft); a directory, a name or a repo id."),
    Setting("tool_constraints", "bool", True,
            description="Constrain decoding so tool calls are valid for their schemas and tool_choice is "
                        "honoured (and JSON replies match output_config.format). false: free decoding, "
                        "parser repair only."),
)
REGISTRY: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

# --- config.toml's [backends.NAME] tables --------------------------------------------------------------

BACKEND_KINDS: tuple[str, ...] = ("mlx", "openai", "azure", "anthropic")
REMOTE = ("openai", "azure", "anthropic")
BackendKeyType = Literal["kind", "text", "url", "env_name", "duration", "names", "count"]


@dataclass(frozen=True)
class BackendKey:
    """One key of a [backends.NAME] table: the kinds that take it, what it holds, its default. routing/config.py
    checks a table against these; `config show` lists each backend's keys from them."""

    name: str
    type: BackendKeyType
    kinds: tuple[str, ...]
    description: str
    default: Any = None
    required_for: tuple[str, ...] = ()
    example: str = ""

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds

    def display(self, value: Any) -> str:
        if value is None:
            return "(none)"
        if self.type == "duration" and isinstance(value, (int, float)):
            return f"{value:g}s"
        if isinstance(value, (list, tuple)):
            return ", ".join(value) or "(none)"
        return str(value)


BACKEND_KEYS: tuple[BackendKey, ...] = (
    BackendKey("url", "url", REMOTE, "the engine's address", required_for=REMOTE, example="http://HOST:8000/v1"),
    BackendKey("model", "text", ("mlx", "openai", "anthropic"),
               "mlx: the model (a directory, a `models list` name or a repo id); openai: the id sent upstream "
               "(unset: Claude Code's); anthropic: an override", required_for=("mlx",), example="mlx-community/…"),
    BackendKey("deployment", "text", ("azure",), "the Azure deployment", required_for=("azure",), example="gpt-4o"),
    BackendKey("api_version", "text", ("azure",), "the Azure api-version", default="2024-10-21"),
    BackendKey("api_key_env", "env_name", REMOTE, "the NAME of the environment variable holding the key"),
    BackendKey("keep_alive", "duration", ("mlx",), "unloaded after this long idle", default=600.0),
    BackendKey("kind", "kind", BACKEND_KINDS, "what serves the requests: mlx, openai, azure or anthropic",
               required_for=BACKEND_KINDS),
    BackendKey("timeout", "duration", BACKEND_KINDS, "longest wait for the first byte and between bytes",
               default=600.0),
    BackendKey("drop_params", "names", BACKEND_KINDS, "request parameters never sent to it", default=()),
    BackendKey("cooldown", "duration", BACKEND_KINDS, "how long it is skipped after failing", default=30.0),
    BackendKey("cooldown_after", "count", BACKEND_KINDS, "consecutive failures that start a cooldown", default=2),
)
BACKEND_KEY_REGISTRY: dict[str, BackendKey] = {key.name: key for key in BACKEND_KEYS}

# Variables that are not settings (no config.toml key), documented alongside them.
ENV_ONLY: tuple[tuple[str, str], ...] = (
    ("MLXCLAUDE_HOME", "Keep config, state, logs and data under this one directory (tests use it)."),
    ("MLXCLAUDE_DEBUG", "Set to 1 to print tracebacks instead of one-line errors."),
    ("MLXCLAUDE_CLAUDE_BIN", "Path of the `claude` executable to run (default: found on PATH)."),
)


@dataclass(frozen=True)
class ServerSettings:
    model: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8765
    auth_token: Optional[str] = None
    context_limit: Optional[int] = None
    max_output_tokens: Optional[int] = None
    max_tokens_policy: Literal["clamp", "error"] = "clamp"
    ping_interval: float = 10.0
    max_queue: int = 16
    max_batch: int = 8
    max_body_bytes: int = MAX_BODY_BYTES
    header_timeout: float = 30.0
    body_timeout: float = 120.0
    prefill_step_size: int = 2048
    cache_max_bytes: Optional[int] = None
    image_backend: Optional[str] = None
    speculative: Literal["auto", "off", "lookup", "draft", "mtp"] = "auto"
    draft_model: Optional[str] = None
    tool_constraints: bool = True

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, *, config_path: Optional[Path] = None,
                 **overrides: object) -> "ServerSettings":
        """Defaults < config.toml < MLXCLAUDE_* in `environ` (default os.environ) < non-None overrides."""
        from mlxclaude.config.load import load_settings

        return load_settings(environ, config_path=config_path, overrides=overrides).settings

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")


# --- lookup --------------------------------------------------------------------------------------


def normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def lookup(key: str) -> Setting:
    """The setting named `key` (dashes allowed); UsageError naming close matches otherwise."""
    name = normalise_key(key)
    if name.startswith(ENV_PREFIX.lower()):
        name = name[len(ENV_PREFIX):]
    setting = REGISTRY.get(name)
    if setting is None:
        raise UsageError(f"unknown setting {key!r}{suggestion(name)}",
                         hint="settings: " + ", ".join(REGISTRY))
    return setting


def suggestion(key: str) -> str:
    matches = difflib.get_close_matches(normalise_key(key), list(REGISTRY), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def mask_secret(value: str) -> str:
    return "****" + value[-4:] if len(value) > 8 else "****"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- documentation -------------------------------------------------------------------------------


def settings_markdown() -> str:
    """The README's settings table, generated from the registry."""
    rows = ["| setting (config.toml) | env var | type | default | description |",
            "| --- | --- | --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.unset_label if setting.default is None else f"`{setting.display(setting.default)}`"
        type_label = setting.type_label.replace("|", " \\| ")
        rows.append(f"| `{setting.name}` | `{setting.env}` | {type_label} | {default} | "
                    f"{setting.description} |")
    for name, description in ENV_ONLY:
        rows.append(f"| | `{name}` | | | {description} |")
    return "\n".join(rows) + "\n"


def _check_registry() -> None:
    names = [spec.name for spec in fields(ServerSettings)]
    assert names == list(REGISTRY), (names, list(REGISTRY))
    defaults = ServerSettings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.name) == setting.default, setting.name


_check_registry()
