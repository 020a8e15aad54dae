"""The real engine: an mlx-lm model generating on the worker thread."""

from __future__ import annotations

import threading
import time
from typing import Iterator

from mlxclaude.engine.backend import GenerationCancelled, GenerationItem, GenerationStats, RenderedPrompt
from mlxclaude.engine.loader import load_model
from mlxclaude.engine.prefix_slot import PrefixSlot
from mlxclaude.engine.render import render_chat
from mlxclaude.engine.sampling import make_mlx_sampler
from mlxclaude.protocol.chat import ChatRequest


class MlxBackend:
    def __init__(self, path: str, *, name: str | None = None, context_limit: int | None = None,
                 prefill_step_size: int = 2048) -> None:
        loaded = load_model(path, name=name, context_limit=context_limit)
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self.prefill_step_size = prefill_step_size
        self.prefix_slot = PrefixSlot(self.model)

    def render(self, chat: ChatRequest) -> RenderedPrompt:
        return render_chat(self.tokenizer, chat, self.info.think_open, self.info.think_close,
                           tool_format=self.info.tool_format)

    def generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int,
                 cancel: threading.Event) -> Iterator[GenerationItem]:
        import mlx.core as mx
        from mlx_lm.generate import generate_step

        stats = GenerationStats(prompt_tokens=len(prompt.tokens))
        cache, reused, stats.cache_note = self.prefix_slot.take(prompt.tokens)
        stats.cached_tokens = reused
        eos_ids = set(self.tokenizer.eos_token_ids)
        detokenizer = self.tokenizer.detokenizer
        detokenizer.reset()
        mx.reset_peak_memory()

        def on_prefill_progress(done: int, total: int) -> None:
            if cancel.is_set() and done < total:
                raise GenerationCancelled()

        started = time.perf_counter()
        steps = generate_step(
            mx.array(prompt.tokens[reused:]),
            self.model,
            max_tokens=max_tokens,
            sampler=make_mlx_sampler(chat.sampling),
            prompt_cache=cache,
            prefill_step_size=self.prefill_step_size,
            prompt_progress_callback=on_prefill_progress,
        )
        first_token_at = None
        stats.finish_reason = "length"
        try:
            for token, _ in steps:
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    stats.prefill_seconds = stats.ttft_seconds = first_token_at - started
                if token in eos_ids:
                    stats.finish_reason = "stop"
                    break
                stats.generated_tokens += 1
                detokenizer.add_token(token)
                piece = detokenizer.last_segment
                if piece:
                    yield piece
                if cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
        except GenerationCancelled:
            stats.finish_reason = "cancelled"
        finally:
            steps.close()
        detokenizer.finalize()
        tail = detokenizer.last_segment
        if tail and stats.finish_reason != "cancelled":
            yield tail
        if first_token_at is not None:
            stats.decode_seconds = time.perf_counter() - first_token_at
        stats.peak_memory_gb = mx.get_peak_memory() / 1e9
        self.prefix_slot.keep(cache, prompt.tokens)
        yield stats
