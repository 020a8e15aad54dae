"""A scripted engine: fixed model text fed through the real parser and protocol. Tests only.

`script(chat)` returns the raw text the "model" says for that request, markup included
(e.g. `<tool_call>{...}</tool_call>`). Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
from typing import Callable, Iterator, Optional

from mlxclaude.engine.backend import DeviceMemory, GenerationItem, GenerationProgress, GenerationStats, ModelInfo, RenderedPrompt
from mlxclaude.parsing.tools import HERMES
from mlxclaude.protocol.chat import ChatRequest


def words_of(text: str) -> list[int]:
    return [hash(word) % 50_000 for word in text.split()]


class ScriptedBackend:
    def __init__(self, script: Callable[[ChatRequest], str], *, context_length: int = 200_000,
                 chunk_size: int = 3, delay: float = 0.0, name: str = "scripted") -> None:
        self.script = script
        self.chunk_size = chunk_size
        self.delay = delay
        self.info = ModelInfo(name=name, path="(scripted)", context_length=context_length,
                              think_open="<think>", think_close="</think>", tool_format=HERMES)
        self.requests: list[ChatRequest] = []
        self.cancelled = threading.Event()
        self.closed = False

    def memory_facts(self) -> DeviceMemory:
        return DeviceMemory(active_bytes=0, peak_bytes=0, cache_bytes=0)  # a script holds no model memory

    def end_thread(self) -> None:
        pass

    def cache_facts(self) -> dict:
        return {}  # a script keeps no prompt cache

    def close(self) -> None:
        self.closed = True

    def render(self, chat: ChatRequest) -> RenderedPrompt:
        text = json.dumps({"messages": chat.messages, "tools": chat.tools}, sort_keys=True)
        return RenderedPrompt(text=text, tokens=words_of(text))

    def generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int,
                 cancel: threading.Event, progress: Optional[GenerationProgress] = None) -> Iterator[GenerationItem]:
        self.requests.append(chat)
        reply = self.script(chat)
        stats = GenerationStats(prompt_tokens=len(prompt.tokens), finish_reason="stop")
        progress = progress or GenerationProgress()
        progress.begin_prefill(len(prompt.tokens), 0)
        progress.begin_decode()
        pieces = [reply[i:i + self.chunk_size] for i in range(0, len(reply), self.chunk_size)]
        for piece in pieces:
            if stats.generated_tokens >= max_tokens and not cancel.is_set():
                stats.finish_reason = "length"
                break
            if cancel.is_set() or (self.delay and cancel.wait(self.delay)):
                self.cancelled.set()
                stats.finish_reason = "cancelled"
                break
            stats.generated_tokens += 1
            progress.generated_tokens = stats.generated_tokens
            yield piece
        yield stats
