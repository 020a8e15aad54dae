"""The contract between the server and whatever produces model text (MLX, or a scripted test engine).

Pure: no mlx imports. Every method of a Backend runs on the worker thread that owns it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Optional, Protocol, Union

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
    extra: dict = field(default_factory=dict)

    @property
    def prefill_tps(self) -> float:
        new = self.prompt_tokens - self.cached_tokens
        return new / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        return self.generated_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


GenerationItem = Union[str, GenerationStats]


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
        self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int, cancel: threading.Event
    ) -> Iterator[GenerationItem]:
        """Yield text pieces as they decode, then exactly one GenerationStats last."""
        ...

    def memory_facts(self) -> DeviceMemory:
        """The allocator's figures now (GET /mlxclaude/status, `models check`)."""
        ...

    def close(self) -> None:
        """Release what the backend holds and finish its background work (the server calls it at shutdown)."""
        ...
