"""The real engine: an mlx-lm model generating on the worker thread."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from mlxclaude.engine.backend import DeviceMemory, GenerationCancelled, GenerationItem, GenerationProgress, GenerationStats, RenderedPrompt
from mlxclaude.engine.batching import BatchEngine, unbatchable_reason
from mlxclaude.engine.cache.prompt_cache import PromptCache
from mlxclaude.engine.constraints import constraint_processors, load_constraints
from mlxclaude.engine.detokenizer import detokenizers_for
from mlxclaude.engine.device import device_memory
from mlxclaude.engine.loader import ModelLoadError, load_model
from mlxclaude.engine.render import render_chat
from mlxclaude.engine.sampling import make_mlx_sampler
from mlxclaude.engine.speculative.draft_model import DraftModel
from mlxclaude.engine.speculative.mtp import mtp_unavailable
from mlxclaude.logs import log_event
from mlxclaude.protocol.chat import ChatRequest, Sampling


@dataclass(frozen=True)
class SpeedFigures:
    prompt_tokens: int
    decode_tokens: int
    prefill_tps: float
    decode_tps: float


class MlxEngine:
    """What the two MLX engines share (MlxBackend on mlx-lm, engine/vision_backend.py's on mlx-vlm): the Backend
    methods that are the device's, not the model's, and `generate` around each one's `_generate`."""

    def memory_facts(self) -> DeviceMemory:
        return device_memory()

    def end_thread(self) -> None:
        release_thread_streams()

    def generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int,
                 cancel: threading.Event, progress: Optional[GenerationProgress] = None) -> Iterator[GenerationItem]:
        try:
            yield from self._generate(prompt, chat, max_tokens, cancel, progress or GenerationProgress())
        except Exception:
            reset_random_state()
            raise

    def _generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int, cancel: threading.Event,
                  progress: GenerationProgress) -> Iterator[GenerationItem]:
        raise NotImplementedError


class MlxBackend(MlxEngine):
    def __init__(self, path: str, *, name: str | None = None, context_limit: int | None = None,
                 prefill_step_size: int = 2048, cache_max_bytes: int | None = None,
                 prompt_cache_dir: Path | None = None, constrain_tools: bool = True,
                 speculative: str = "auto", draft_model: str | None = None) -> None:
        loaded = load_model(path, name=name, context_limit=context_limit)
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.new_detokenizer = detokenizers_for(self.tokenizer)  # a fresh one per reply
        self.info = loaded.info
        self.prefill_step_size = prefill_step_size
        self.speculative, self.speculative_note = speculative_mode(speculative, self.model, self.info.name)
        self.draft_model = load_draft_model(draft_model, self.tokenizer, self.speculative)
        self.vocab_size = logits_size(self.model, self.tokenizer)
        # constrained tool calls / JSON replies (engine/constraints); None when llguidance can't serve it
        self.constraints = load_constraints(self.tokenizer, self.info, enabled=constrain_tools)
        # cache_max_bytes None: a share of available memory; prompt_cache_dir None: nothing saved to disk
        self.prompt_cache = PromptCache(self.model, self.tokenizer, max_bytes=cache_max_bytes,
                                        prefill_step_size=prefill_step_size, persist_dir=prompt_cache_dir,
                                        model_path=self.info.path)

    def cache_facts(self) -> dict:
        """Prompt-cache figures for GET /mlxclaude/status: entries, bytes, tiers, hit rates (overall, per session)."""
        return self.prompt_cache.facts()

    def close(self) -> None:
        """Finish writing system-prompt snapshots to disk (call at shutdown)."""
        self.prompt_cache.close()

    def measure_speed(self, tokens: list[int], decode_tokens: int) -> SpeedFigures:
        """Prefill `tokens` and decode `decode_tokens` greedily. Not generate(): a fresh cache (no prefix
        reuse) and no stop at EOS, so both rates are real (`mlxclaude models check`)."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.models.cache import make_prompt_cache

        greedy = make_mlx_sampler(Sampling(temperature=0.0), self.vocab_size)
        started = time.perf_counter()
        steps = generate_step(mx.array(tokens), self.model, max_tokens=decode_tokens, sampler=greedy,
                              prompt_cache=make_prompt_cache(self.model), prefill_step_size=self.prefill_step_size)
        return speed_of(steps, len(tokens), started)

    def batcher(self, *, max_batch: int) -> Optional[BatchEngine]:
        """The continuous-batching engine the worker drives (engine/batching.py), or None: requests then run one
        at a time through `generate` (max_batch 1, or a model whose caches mlx-lm cannot batch: logged once)."""
        if max_batch <= 1:
            return None
        reason = unbatchable_reason(self.model)
        if reason is not None:
            log_event("batching_off", level="warning", model=self.info.name, reason=reason,
                      note="requests run one at a time")
            return None
        return BatchEngine(self, max_batch=max_batch)

    def render(self, chat: ChatRequest) -> RenderedPrompt:
        return render_chat(self.tokenizer, chat, self.info.think_open, self.info.think_close,
                           tool_format=self.info.tool_format)

    def _generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int,
                  cancel: threading.Event, progress: GenerationProgress) -> Iterator[GenerationItem]:
        import mlx.core as mx
        from mlx_lm.generate import generate_step

        stats = GenerationStats(prompt_tokens=len(prompt.tokens))
        started = time.perf_counter()
        # may prefill up to checkpoints itself, moving `progress` on
        lease = self.prompt_cache.begin(prompt, chat, cancel, progress)
        cache, reused = lease.cache, lease.offset
        prefilled_before = lease.offset - lease.reused  # new tokens the prompt cache already ran
        stats.cached_tokens, stats.cache_note, stats.extra = lease.reused, lease.note, dict(lease.extra)
        eos_ids = set(self.tokenizer.eos_token_ids)
        detokenizer = self.new_detokenizer()
        mx.reset_peak_memory()

        def on_prefill_progress(done: int, total: int) -> None:
            if cancel.is_set() and done < total:
                raise GenerationCancelled()
            progress.prefilled(prefilled_before + done)

        steps = generate_step(
            mx.array(prompt.tokens[reused:]),
            self.model,
            max_tokens=max_tokens,
            sampler=make_mlx_sampler(chat.sampling, self.vocab_size),
            prompt_cache=cache,
            prefill_step_size=self.prefill_step_size,
            prompt_progress_callback=on_prefill_progress,
            logits_processors=constraint_processors(self.constraints, chat, prompt, max_tokens),
        )
        first_token_at = None
        stats.finish_reason = "length"
        try:
            for token, _ in steps:
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    stats.prefill_seconds = stats.ttft_seconds = first_token_at - started
                    progress.begin_decode()
                if token in eos_ids:
                    stats.finish_reason = "stop"
                    break
                stats.generated_tokens += 1
                stats.decode_steps += 1
                progress.generated_tokens = stats.generated_tokens
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
        self.prompt_cache.finish(lease)
        progress.phase = "done"
        yield stats


def speed_of(steps: Iterator, prompt_tokens: int, started: float) -> SpeedFigures:
    """Prefill and decode rates of a generation's steps, run here to the end: the time to the first token is
    the prefill; the rest, the decode."""
    first = last = started
    count = 0
    for count, _ in enumerate(steps, start=1):
        last = time.perf_counter()
        if count == 1:
            first = last
    prefill_tps = prompt_tokens / (first - started) if first > started else 0.0
    decode_tps = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    return SpeedFigures(prompt_tokens=prompt_tokens, decode_tokens=count, prefill_tps=prefill_tps,
                        decode_tps=decode_tps)


def speculative_mode(requested: str, model, name: str) -> tuple[str, Optional[str]]:
    """The speculation mode this model decodes with (engine/speculative/policy.py MODES), and why it is not the
    one asked for: `mtp` runs as `auto` while mlx-lm cannot run MTP heads (engine/speculative/mtp.py)."""
    if requested != "mtp":
        return requested, None
    reason = mtp_unavailable(model)
    if reason is None:
        return requested, None
    log_event("mtp_unavailable", kind="daemon", level="warning", model=name, note=reason)
    return "auto", reason


def load_draft_model(path: str | None, tokenizer, speculative: str) -> Optional[DraftModel]:
    """The `draft_model` setting's model, loaded to draft for this one (ModelLoadError when it cannot)."""
    if speculative == "draft" and not path:
        raise ModelLoadError("speculative = \"draft\" needs a draft model: mlxclaude config set draft_model MODEL "
                             "(a small model with the same tokenizer)")
    if not path or speculative in ("off", "lookup"):
        return None
    try:
        return DraftModel.load(path, tokenizer)
    except Exception as exc:
        raise ModelLoadError(str(exc)) from exc


def logits_size(model, tokenizer) -> int:
    """How many logits the model produces per step (what mlx-lm's samplers check top_k against)."""
    size = getattr(getattr(model, "args", None), "vocab_size", None)
    return int(size) if size else len(tokenizer.get_vocab())


def release_thread_streams() -> None:
    """MLX streams are thread-local: a thread that leaves its streams for interpreter teardown aborts the process."""
    import mlx.core as mx

    clear_streams = getattr(mx, "clear_streams", None)
    if clear_streams is not None:
        clear_streams()


def reset_random_state() -> None:
    """A failure inside a compiled sampler leaves MLX's global random key a placeholder that poisons every
    later sampled request ("eval an array without a primitive"); a fresh seed replaces it."""
    import mlx.core as mx

    mx.random.seed(int.from_bytes(os.urandom(4), "little"))
