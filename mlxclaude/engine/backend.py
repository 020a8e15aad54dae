"""The contract between the server and whatever produces model text (MLX, or a scripted test engine).

Pure: no mlx imports. Every method of a Backend runs on the worker thread that owns it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Protocol, Union

from mlxclaude.parsing.tools import ToolFormat
from mlxclaude.protocol.chat import ChatRequest


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    context_length: int
    supports_vision: bool = False
    think_open: Optional[str] = None
    think_close: Optional[str] = None
    tool_format: Optional[ToolFormat] = None


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    tokens: list[int]
    starts_in_thinking: bool = False
    # For the prompt cache: the token index where the system+tools prefix ends (None: unknown), and the
    # char offset in `text` and role of each template message (to say which message a miss diverged in).
    system_end: Optional[int] = None
    message_offsets: tuple[int, ...] = ()
    message_roles: tuple[str, ...] = ()
    media: Any = None  # a vision backend's prepared images (engine/vision_backend.py); None for text


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    ttft_seconds: float = 0.0
    peak_memory_gb: float = 0.0
    finish_reason: str = "stop"  # stop | length | cancelled
    cache_note: str = ""
    decode_steps: int = 0  # forward passes that produced its tokens (fewer than tokens when drafts are accepted)
    drafted_tokens: int = 0  # speculative decoding: tokens drafted and checked…
    accepted_tokens: int = 0  # …and of those, the ones the model agreed with
    extra: dict = field(default_factory=dict)

    @property
    def speculation(self) -> Optional[str]:
        return speculation_text(self.accepted_tokens, self.drafted_tokens, self.decode_steps)

    @property
    def prefill_tps(self) -> float:
        new = self.prompt_tokens - self.cached_tokens
        return new / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        return self.generated_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


GenerationItem = Union[str, GenerationStats]


def speculation_text(accepted: int, drafted: int, steps: int) -> Optional[str]:
    """`30/42 in 25 steps`: drafted tokens accepted, of those drafted, and forward passes (None: nothing drafted)."""
    return f"{accepted}/{drafted} in {steps} steps" if drafted else None


@dataclass
class GenerationProgress:
    """How far one generation has got: written by the backend on the worker thread, read from any thread
    (GET /mlxclaude/status, the server's `prefill_progress` log lines). Each field is written whole; times
    are time.monotonic(). The prefill counts only the prompt tokens not reused from the prompt cache."""

    phase: str = "queued"  # queued | prefill | decode | done
    prompt_tokens: int = 0
    cached_tokens: int = 0
    prefill_done: int = 0
    generated_tokens: int = 0
    decode_steps: int = 0  # speculative decoding, as in GenerationStats
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    prefill_started: Optional[float] = None
    decode_started: Optional[float] = None

    @property
    def prefill_total(self) -> int:
        return max(0, self.prompt_tokens - self.cached_tokens)

    def begin_prefill(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.prompt_tokens, self.cached_tokens, self.prefill_done = prompt_tokens, cached_tokens, 0
        self.prefill_started = time.monotonic()
        self.phase = "prefill"

    def prefilled(self, done: int) -> None:
        """`done` new prompt tokens are in the cache (never more than the total, never going back)."""
        self.prefill_done = max(self.prefill_done, min(done, self.prefill_total))

    def begin_decode(self) -> None:
        self.prefill_done = self.prefill_total
        self.decode_started = time.monotonic()
        self.phase = "decode"

    def prefill_tps(self, now: Optional[float] = None) -> float:
        if self.prefill_started is None:
            return 0.0
        end = self.decode_started if self.decode_started is not None else (now or time.monotonic())
        elapsed = end - self.prefill_started
        return self.prefill_done / elapsed if elapsed > 0 else 0.0

    def decode_tps(self, now: Optional[float] = None) -> float:
        if self.decode_started is None:
            return 0.0
        elapsed = (now or time.monotonic()) - self.decode_started
        return self.generated_tokens / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class DeviceMemory:
    """What the backend's allocator holds, in bytes; None where it does not say (or keeps no such figure)."""
    active_bytes: Optional[int] = None
    peak_bytes: Optional[int] = None
    cache_bytes: Optional[int] = None
    limit_bytes: Optional[int] = None  # what weights and KV cache must fit under (Metal's working set), if any


class GenerationCancelled(Exception):
    """Raised inside a backend when the cancel event is set during prefill."""


class Backend(Protocol):
    info: ModelInfo

    def render(self, chat: ChatRequest) -> RenderedPrompt: ...

    def generate(
        self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int, cancel: threading.Event,
        progress: Optional[GenerationProgress] = None,
    ) -> Iterator[GenerationItem]:
        """Yield text pieces as they decode, then exactly one GenerationStats last; keep `progress` (when
        given) up to date: begin_prefill, prefilled as chunks go in, begin_decode, generated_tokens."""
        ...

    def memory_facts(self) -> DeviceMemory:
        """The allocator's figures now (GET /mlxclaude/status, `models check`)."""
        ...

    def cache_facts(self) -> dict:
        """Prompt-cache figures for GET /mlxclaude/status ({} for a backend without a prompt cache)."""
        ...

    def close(self) -> None:
        """Release what the backend holds and finish its background work (the server calls it at shutdown)."""
        ...

    def end_thread(self) -> None:
        """Release what the worker thread holds (MLX's thread-local streams), as that thread exits."""
        ...
