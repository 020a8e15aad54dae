"""Does Claude Code's prompt fit this model? One answer for `models check`, `doctor`, `run` and `up`.

What Claude Code needs is measured, not guessed: `data/claude_code_request.json.xz` is the largest main-turn
request of a recorded Claude Code session (2.1.197: its system prompt, the 25 tools it sends by default and
a short tool round trip; taken from bench/traffic/claude_session_full.jsonl.xz without its metadata). It goes
through the server's own path (wire params → ChatRequest) and the engine's render function with the model's
chat template, and its tokens are counted with the model's tokenizer. SmolLM2-135M counts 21,653 tokens; the
tests' tiny model, whose tokenizer was trained on Python source, 27,379.

Needed: those tokens plus REPLY_ROOM (4,096) for a reply. The server clips Claude Code's max_tokens to what
is left of the context (engine/turn.py), so a turn works as long as the prompt and a reply fit; 4,096 tokens
hold a tool call, an edit or a short answer. Less room than that is a failure: Claude Code stops with
"Prompt is too long" or replies cut short. Less than CONVERSATION_ROOM (16,384) left after the prompt is a
warning: it works, but Claude Code compacts the conversation every few turns.

Available: the model's own context (config.json, as the loader reads it), lowered by the `context_limit`
setting, and by what fits in free memory beside the weights (models/memory.py) when the model is not
loaded yet. Nothing here loads weights; the tokenizer alone is loaded (engine/tokenizer_only.py) when no
render function is passed, and the count is remembered per tokenizer (paths.cache_dir()), so `run` pays for
it once per model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

from mlxclaude import __version__, paths
from mlxclaude.errors import MlxClaudeError
from mlxclaude.models.memory import kv_bytes_per_token, max_context_that_fits, weights_bytes

if TYPE_CHECKING:
    from mlxclaude.engine.backend import RenderedPrompt
    from mlxclaude.protocol.chat import ChatRequest

REPLY_ROOM = 4096
CONVERSATION_ROOM = 16384
REQUEST_FILE = Path(__file__).parent / "data" / "claude_code_request.json.xz"
REQUEST_VERSION = 1  # bump when the recorded request changes: remembered counts are then measured again
_COUNTS_KEPT = 64
# what decides how the request renders and tokenizes (besides mlxclaude's own code, keyed by its version)
_TOKENIZER_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                    "chat_template.jinja", "chat_template.json", "tiktoken.model")

Status = Literal["ok", "warn", "fail"]
Render = Callable[["ChatRequest"], "RenderedPrompt"]


class ContextUnknown(MlxClaudeError):
    """Claude Code's prompt could not be measured with this model (no usable tokenizer or template)."""


@dataclass(frozen=True)
class ContextFit:
    model: str
    prompt_tokens: int  # Claude Code's system prompt, tools and a short exchange, with this model's tokenizer
    model_context: int  # the model's own context (config.json)
    context_limit: Optional[int] = None  # the context_limit setting, when it lowers the model's
    memory_context: Optional[int] = None  # the largest context that fits in free memory; None: not bounded
    available_bytes: Optional[int] = None
    weights_bytes: Optional[int] = None

    @property
    def needed(self) -> int:
        return self.prompt_tokens + REPLY_ROOM

    @property
    def available(self) -> int:
        """The context the model gets: its own, lowered by context_limit and by memory."""
        values = [self.model_context, self.context_limit, self.memory_context]
        return min(value for value in values if value is not None)

    @property
    def limited_by(self) -> Literal["memory", "context_limit", "model"]:
        """What sets `available`: free memory, the context_limit setting, or the model itself."""
        if self.memory_context is not None and self.memory_context < min(self.model_context,
                                                                          self.context_limit or self.model_context):
            return "memory"
        return "context_limit" if self.context_limit is not None else "model"

    @property
    def status(self) -> Status:
        if self.available < self.needed:
            return "fail"
        if self.available < self.prompt_tokens + CONVERSATION_ROOM:
            return "warn"
        return "ok"

    @property
    def fits(self) -> bool:
        return self.status != "fail"

    def context_text(self) -> str:
        """What bounds the context, in words: "the model's context is 8,192"."""
        from mlxclaude.config.units import format_bytes

        if self.limited_by == "memory":
            free = f" ({format_bytes(self.available_bytes)} free)" if self.available_bytes is not None else ""
            if not self.available:
                return f"the weights alone do not fit in free memory{free}"
            return f"only {self.available:,} tokens of context fit in free memory beside the weights{free}"
        if self.limited_by == "context_limit":
            return f"the context_limit setting caps the context at {self.available:,}"
        return f"the model's context is {self.available:,}"

    def detail(self) -> str:
        """One line for `models check` and `doctor`."""
        need = (f"Claude Code needs {self.needed:,} tokens ({self.prompt_tokens:,} for its system prompt and tools "
                f"with this tokenizer + {REPLY_ROOM:,} for a reply)")
        if self.status == "fail":
            return f"{need}, but {self.context_text()}"
        left = self.available - self.prompt_tokens
        if self.status == "warn":
            return (f"{need}; {self.context_text()}, which leaves {left:,} tokens for the conversation: "
                    "Claude Code will compact it every few turns")
        return f"{need}; {self.context_text()} ({left:,} tokens left for the conversation)"

    def figures(self) -> dict[str, int]:
        return {"claude_code_prompt_tokens": self.prompt_tokens, "context_needed": self.needed,
                "context_available": self.available}

    def advice(self, command: str = "mlxclaude run") -> Optional[str]:
        """What to do instead (None when it fits): a model that would work, or memory to free."""
        if self.fits:
            return None
        from mlxclaude.models.recommend import recommended_model

        recommended = recommended_model()
        other = recommended.repo != self.model
        example = f"`{command} --model {recommended.repo}` (recommended for this machine)" if other else None
        if self.limited_by == "memory":
            fix = "close other programs to free memory"
            return f"{fix}, or use a smaller model, e.g. {example}" if example else f"{fix}, or use a smaller model"
        if self.limited_by == "context_limit":
            return f"raise it (`mlxclaude config set context_limit {self.needed}`) or unset it"
        if example:
            return f"use a model with a longer context, e.g. {example}"
        return "use a model with a longer context"

    def refusal(self, command: str) -> MlxClaudeError:
        """The error `run` and `up` stop with before launching anything."""
        return MlxClaudeError(f"{self.model} cannot run Claude Code: {self.detail()}",
                              hint=f"{self.advice(command)}; or pass --force to start it anyway")


@functools.lru_cache(maxsize=1)
def claude_code_request_body() -> dict[str, Any]:
    """The recorded Claude Code request (Anthropic Messages body)."""
    return json.loads(lzma.decompress(REQUEST_FILE.read_bytes()))


def claude_code_chat() -> "ChatRequest":
    """The recorded request as the server hands it to the engine."""
    from mlxclaude.protocol.request import to_chat_request
    from mlxclaude.protocol.wire import parse_create_params

    return to_chat_request(parse_create_params(claude_code_request_body()))


def prompt_tokens(path: Path, render: Optional[Render] = None) -> int:
    """Tokens Claude Code's prompt takes with the model in `path` (remembered per tokenizer). With `render`
    (a loaded backend's), that renders it; otherwise the tokenizer alone is loaded. ContextUnknown when the
    tokenizer or the chat template cannot render it."""
    key = _count_key(path)
    counts = _read_counts()
    if key in counts:
        return counts[key]
    from mlxclaude.engine.loader import ModelLoadError
    from mlxclaude.engine.render import RenderError

    try:
        if render is None:
            from mlxclaude.engine.tokenizer_only import TokenizerOnly

            render = TokenizerOnly(path).render
        rendered = render(claude_code_chat())
    except (ModelLoadError, RenderError, OSError, ValueError) as exc:
        raise ContextUnknown(f"could not render Claude Code's prompt with {path.name}: {_one_line(exc)}") from exc
    tokens = len(rendered.tokens)
    if tokens < len(rendered.text) // 32:  # real tokenizers take 3-5 characters a token
        raise ContextUnknown(f"the tokenizer of {path.name} encodes Claude Code's prompt ({len(rendered.text):,} "
                             f"characters) to only {tokens:,} tokens: it is broken")
    _remember(key, tokens, counts)
    return tokens


def context_fit(path: Path | str, *, name: Optional[str] = None, render: Optional[Render] = None,
                context_limit: Optional[int] = None, available_bytes: Optional[int] = None,
                config: Optional[dict] = None) -> ContextFit:
    """Claude Code's prompt against the model in `path`. `available_bytes`: free memory to bound the context
    by (None when the model is already loaded, or memory is unknown). Raises ContextUnknown when it cannot
    be measured (no config.json, no usable tokenizer or chat template)."""
    from mlxclaude.engine.loader import context_length_of

    path = Path(path).expanduser()
    if config is None:
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ContextUnknown(f"no readable config.json in {path}") from exc
    tokens = prompt_tokens(path, render)
    model_context = context_length_of(config)
    weights = weights_bytes(path)
    memory_context = None
    if available_bytes is not None and weights:
        memory_context = max_context_that_fits(model_context=model_context, available_bytes=available_bytes,
                                               weights_bytes=weights, kv_per_token=kv_bytes_per_token(config))
    limit = context_limit if context_limit is not None and context_limit < model_context else None
    return ContextFit(model=name or path.name, prompt_tokens=tokens, model_context=model_context,
                      context_limit=limit, memory_context=memory_context, available_bytes=available_bytes,
                      weights_bytes=weights or None)


def fit_without_loading(path: Path | str, *, name: Optional[str] = None, context_limit: Optional[int] = None,
                        loaded: bool = False) -> Optional[ContextFit]:
    """context_fit from the tokenizer and config.json alone, bounded by the memory free now unless the model is
    `loaded` already (a running daemon holds it); None when it cannot be measured."""
    from mlxclaude.engine.memory import memory_facts

    path = Path(path).expanduser()
    if not path.is_dir():
        return None
    available = None if loaded else memory_facts().available_bytes
    try:
        return context_fit(path, name=name, context_limit=context_limit, available_bytes=available)
    except ContextUnknown:
        return None


# -- remembered counts ----------------------------------------------------------------------------------


def _counts_file() -> Path:
    return paths.cache_dir() / "claude-code-prompt-tokens.json"


def _count_key(path: Path) -> str:
    digest = hashlib.sha256(f"{REQUEST_VERSION}|{__version__}|{path.resolve()}".encode())
    for name in _TOKENIZER_FILES:
        try:
            stat = (path / name).stat()
        except OSError:
            continue
        digest.update(f"|{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _read_counts() -> dict[str, int]:
    try:
        data = json.loads(_counts_file().read_text())
    except (OSError, ValueError):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, int)} if isinstance(data, dict) else {}


def _remember(key: str, tokens: int, counts: dict[str, int]) -> None:
    counts = {**counts, key: tokens}
    kept = dict(list(counts.items())[-_COUNTS_KEPT:])
    target = _counts_file()
    tmp: Optional[str] = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".counts-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(kept, handle)
        os.replace(tmp, target)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # a cache: measuring again next time is fine


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
