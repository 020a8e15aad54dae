"""Continuous batching: concurrent generations served together by mlx-lm's BatchGenerator.

The worker (engine/worker.py) calls `step()` in a loop on the engine thread and `add()`s streams between
steps. One step:
  1. streams no longer wanted (client gone, or its sink took all it can: a stop sequence, a repeated or
     single tool call) leave the batch; their KV cache goes back to the prompt cache;
  2. waiting streams are admitted, the interactive main turn first, up to `max_batch` streams and a KV
     memory budget (the prompt cache's byte budget): the prompt-cache lookup leases each its cached prefix,
     and it is inserted with the rest of its prompt cut into segments at the cache's checkpoints;
  3. `BatchGenerator.next()`: one decode step for every decoding stream and one prefill chunk for every
     stream still prefilling (`prefill_step_size` tokens alone, an eighth of it while the batch is shared),
     so a long prefill is interleaved with the others' decoding and a short request joins within a chunk;
  4. a finished segment is a checkpoint: its cache is extracted and stored (the system+tools prefix, and
     for caches that cannot be cut back the think tail and the prompt less its last token);
  5. each generated token goes through the stream's detokenizer into its sink (engine/turn.py TurnSink:
     stop sequences, reply parser); a stream ends at EOS, max_tokens, or when removed as in 1.

Per stream, as when run alone: its sampler, its logits processors (constrained tool calls and JSON
replies: mlx-lm calls them per sequence with that sequence's tokens and a (1, vocab) row), its prompt
cache lease, and its GenerationStats (prompt/cached/generated tokens, prefill and decode time, TTFT).

On this project's CPU machine (float32, mlx[cpu]) a greedy stream is token-for-token the same batched or
alone: a matmul row and a masked attention row do not depend on the other rows or on left padding
(tests/server/test_batching.py). On a GPU, kernels chosen by batch shape may round differently in the
last bits, so greedy replies can differ after a near tie.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.cache import kv
from mlxclaude.engine.cache.memory import default_max_bytes
from mlxclaude.engine.cache.prompt_cache import Lease
from mlxclaude.engine.cache.store import Tier
from mlxclaude.engine.constraints import batched_step, constraint_processors
from mlxclaude.engine.jobs import Stream
from mlxclaude.engine.sampling import make_mlx_sampler
from mlxclaude.engine.speculative.speculator import Speculator, StreamDrafts
from mlxclaude.logs import log_internal_error
from mlxclaude.protocol.chat import Sampling

SHARED_CHUNK_DIVISOR = 8  # prefill chunks while the batch is shared: 2048 → 256 tokens
MIN_SHARED_CHUNK = 64  # ... but never below this (smaller chunks only add steps)


def unbatchable_reason(model: Any) -> Optional[str]:
    """Why mlx-lm's BatchGenerator cannot serve this model (None: it can)."""
    from mlx_lm.models.cache import make_prompt_cache

    kinds = sorted({type(layer).__name__ for layer in make_prompt_cache(model) if not hasattr(layer, "merge")})
    return f"cache layers without batching support: {', '.join(kinds)}" if kinds else None


@dataclass
class _Sequence:
    """A stream inside the BatchGenerator."""

    stream: Stream
    lease: Lease
    uid: int
    boundaries: deque  # (token index, tier or None) of each segment end before the last token
    detokenizer: Any
    stats: GenerationStats
    reserve: int  # KV bytes held back for it
    admitted: float = field(default_factory=time.perf_counter)
    prefilled: int = 0  # of the tokens it inserted (the prompt past its cached prefix)
    last_token: Optional[float] = None
    drafts: Optional[StreamDrafts] = None  # speculation on: its drafters and acceptance record


class BatchEngine:
    def __init__(self, backend: Any, *, max_batch: int, kv_budget: Optional[int] = None) -> None:
        from mlx_lm.generate import StopSequences

        self.backend = backend
        self.max_batch = max(1, max_batch)
        self.prefill_step_size = backend.prefill_step_size
        self._kv_budget = kv_budget
        self.bytes_per_token = kv.bytes_per_token(backend.model)
        self._eos = StopSequences([(token,) for token in backend.tokenizer.eos_token_ids])
        # one object for every greedy stream: a greedy batch samples in one call
        self._greedy = make_mlx_sampler(Sampling(temperature=0.0), backend.vocab_size)
        self.waiting: list[Stream] = []
        self.active: dict[int, _Sequence] = {}
        self._generator: Any = None
        self.steps = 0
        self.prefilled_tokens = 0  # prompt tokens the batch has run through the model (cached ones never)
        self.largest_batch = 0
        self.batched_constraints = False  # whether constrained rows decode batched (engine/constraints/batched_step.py)
        self.speculator = Speculator(getattr(backend, "speculative", "off"), backend.tokenizer,
                                     getattr(backend, "draft_model", None), getattr(backend, "speculative_note", None))

    # --- what the worker asks ------------------------------------------------------------------------

    def add(self, stream: Stream) -> None:
        self.waiting.append(stream)
        self.waiting.sort(key=lambda waiting: (waiting.priority, waiting.submitted))

    @property
    def running(self) -> bool:
        return bool(self.active)

    @property
    def has_work(self) -> bool:
        return bool(self.active or self.waiting)

    @property
    def kv_budget(self) -> int:
        """KV bytes the streams in the batch may reserve: the prompt cache's byte budget (or, with that cache
        off, the share of memory it would get by default)."""
        if self._kv_budget is None:
            budget = self.backend.prompt_cache.store.max_bytes
            self._kv_budget = budget if budget > 0 else default_max_bytes()
        return self._kv_budget

    def facts(self) -> dict[str, Any]:
        """For GET /mlxclaude/status (read from another thread: copies only)."""
        return {"active": len(self.active), "waiting": len(self.waiting), "steps": self.steps,
                "largest_batch": self.largest_batch, "prefilled_tokens": self.prefilled_tokens,
                "kv_budget_bytes": self.kv_budget,
                "kv_reserved_bytes": sum(sequence.reserve for sequence in list(self.active.values())),
                "kv_bytes_per_token": round(self.bytes_per_token, 1),
                "speculative": self.speculator.facts()}

    def close(self) -> None:
        for stream in self.waiting:
            stream.cancel.set()
            stream.end_cancelled()
        self.waiting.clear()
        for sequence in list(self.active.values()):
            sequence.stream.cancel.set()
        self._remove([sequence.uid for sequence in self.active.values()])
        if self._generator is not None:
            self._generator.close()
            self._generator = None

    # --- one step ------------------------------------------------------------------------------------

    def step(self, admit: bool = True) -> None:
        self._drop_cancelled_waiting()
        unwanted = [sequence.uid for sequence in self.active.values() if not sequence.stream.wanted]
        if unwanted:
            self._remove(unwanted)
        if admit:
            self._admit()
        if not self.active:
            return
        self._generator.prefill_step_size = self.chunk_size()
        try:
            prompt_responses, generation_responses = self._next()
        except Exception as exc:
            self.fail_all(exc)
            return
        self.steps += 1
        now = time.perf_counter()
        for uid in {response.uid for response in generation_responses}:
            if uid in self.active:
                stats = self.active[uid].stats
                stats.decode_steps += 1
                self.active[uid].stream.progress.decode_steps = stats.decode_steps
        for response in prompt_responses:
            sequence = self.active.get(response.uid)
            if sequence is not None:
                self._on_prompt(sequence, response)
        finished: list[int] = []
        for response in generation_responses:
            sequence = self.active.get(response.uid)
            if sequence is None:
                continue
            if response.uid in finished:  # its sink is done: tokens a verify step accepted after that are not the reply's
                if response.finish_reason is not None:  # …and the batch has let it go already
                    finished.remove(response.uid)
                    self._finish(sequence, response.prompt_cache, "cancelled")
                continue
            self._on_token(sequence, response, now, finished)
        if finished:
            self._remove(finished)

    def _next(self) -> tuple[list, list]:
        """The generator's next responses: a verify step or a plain one (engine/speculative/speculator.py)."""
        prompt_responses, generation_responses, verified = self.speculator.step(self._generator, self._drafts_of)
        if verified is not None:
            for uid, (drafted, accepted) in verified.by_uid.items():
                sequence = self.active.get(uid)
                if sequence is not None:
                    stats, progress = sequence.stats, sequence.stream.progress
                    stats.drafted_tokens += drafted
                    stats.accepted_tokens += accepted
                    progress.drafted_tokens, progress.accepted_tokens = stats.drafted_tokens, stats.accepted_tokens
        return prompt_responses, generation_responses

    def _drafts_of(self, uid: int) -> Optional[StreamDrafts]:
        sequence = self.active.get(uid)
        return sequence.drafts if sequence is not None else None

    def chunk_size(self) -> int:
        """Prompt tokens a prefilling stream takes in this step: `prefill_step_size` while it is alone, an eighth
        of it (at least 64) while others share the batch. A step is one chunk for every prefilling stream (a short prompt is
        padded to the longest chunk) plus one token for every decoding stream, so with full chunks a side
        request admitted next to a long prefill would wait three long chunks for its first token, and the
        decoding streams would get one token per long chunk."""
        if len(self.active) <= 1:
            return self.prefill_step_size
        return max(min(self.prefill_step_size, MIN_SHARED_CHUNK), self.prefill_step_size // SHARED_CHUNK_DIVISOR)

    def _drop_cancelled_waiting(self) -> None:
        if not any(stream.cancel.is_set() for stream in self.waiting):
            return
        for stream in [stream for stream in self.waiting if stream.cancel.is_set()]:
            self.waiting.remove(stream)
            stream.end_cancelled()

    # --- admission -----------------------------------------------------------------------------------

    def _reserve_for(self, stream: Stream) -> int:
        context = self.backend.info.context_length
        return int(self.bytes_per_token * min(stream.prompt_tokens + stream.request.max_tokens, context))

    def _admit(self) -> None:
        while self.waiting and len(self.active) < self.max_batch:
            stream = self.waiting[0]
            reserve = self._reserve_for(stream)
            held = sum(sequence.reserve for sequence in self.active.values())
            if self.active and held + reserve > self.kv_budget:
                break  # the head waits for memory; nothing behind it overtakes it
            self.waiting.pop(0)
            try:
                self._insert(stream, reserve)
            except Exception as exc:
                log_internal_error("batch_admit_failed", exc)
                stream.fail(exc)
        self.largest_batch = max(self.largest_batch, len(self.active))

    def _insert(self, stream: Stream, reserve: int) -> None:
        import mlx.core as mx
        from mlx_lm.generate import BatchGenerator

        request = stream.request
        prompt, chat = request.prompt, request.chat
        stream.running, stream.started = True, time.perf_counter()
        if self._generator is None:
            self._generator = BatchGenerator(self.backend.model, max_tokens=request.max_tokens,
                                             sampler=self._greedy, completion_batch_size=self.max_batch,
                                             prefill_batch_size=self.max_batch,
                                             prefill_step_size=self.prefill_step_size)
            self.batched_constraints = batched_step.install(self._generator)
        if not self.active:
            mx.reset_peak_memory()
        cache = self.backend.prompt_cache
        lease = cache.begin(prompt, chat, stream.cancel, stream.progress, prefill=False, take=False)
        stats = GenerationStats(prompt_tokens=len(prompt.tokens), cached_tokens=lease.reused,
                                cache_note=lease.note, extra=dict(lease.extra))
        stats.extra["batch"] = len(self.active) + 1
        queued = stream.started - stream.submitted
        if queued >= 0.001:
            stats.extra["queued_s"] = round(queued, 3)
        tokens, limit = lease.tokens, len(lease.tokens) - 1
        points = cache.checkpoints(lease, prompt)
        ends = sorted({point for point, _ in points} | {limit})
        tiers = dict(points)
        segments, start = [], lease.offset
        for end in ends:
            if end > start:
                segments.append(tokens[start:end])
                start = end
        boundaries = deque((end, tiers.get(end)) for end in ends if end > lease.offset)
        segments.append(tokens[limit:])
        sampler = self._greedy if chat.sampling.effective_temperature <= 0 else make_mlx_sampler(chat.sampling,
                                                                                      self.backend.vocab_size)
        processors = constraint_processors(self.backend.constraints, chat, prompt, request.max_tokens)
        (uid,) = self._generator.insert_segments(
            [segments], max_tokens=[request.max_tokens], caches=[lease.cache], all_tokens=[[]],
            samplers=[sampler], logits_processors=[processors or []], stop_sequences=[self._eos])
        lease.cache = None  # the batch owns it now; finishing hands back the batch's copy
        self.active[uid] = _Sequence(stream=stream, lease=lease, uid=uid, boundaries=boundaries,
                                     detokenizer=self.backend.new_detokenizer(), stats=stats, reserve=reserve,
                                     admitted=stream.started,
                                     drafts=self.speculator.drafts_for(prompt))

    # --- responses -----------------------------------------------------------------------------------

    def _on_prompt(self, sequence: _Sequence, response: Any) -> None:
        done, _ = response.progress
        stream = sequence.stream
        self.prefilled_tokens += max(0, done - sequence.prefilled)
        sequence.prefilled = done
        stream.progress.prefilled(done)
        if not response.end_of_segment or response.end_of_prompt or not sequence.boundaries:
            return
        point, tier = sequence.boundaries.popleft()
        sequence.lease.offset = point
        if tier is None:
            return
        try:
            snapshot, _ = self._generator.extract_cache([sequence.uid])[sequence.uid]
            kv.evaluate(snapshot)
            self.backend.prompt_cache.store_checkpoint(sequence.lease, point, tier, snapshot)
        except Exception as exc:  # a snapshot is an optimisation: the generation goes on without it
            log_internal_error("checkpoint_failed", exc, point=point, tier=Tier(tier).label)

    def _on_token(self, sequence: _Sequence, response: Any, now: float, finished: list[int]) -> None:
        stream, stats = sequence.stream, sequence.stats
        if stream.first_token is None:
            stream.first_token = now
            stream.progress.begin_decode()
            stats.prefill_seconds = now - sequence.admitted
            stats.ttft_seconds = now - stream.submitted
        sequence.last_token = now
        if response.finish_reason is not None:  # the batch already let it go
            self._finish(sequence, response.prompt_cache, "stop" if response.finish_reason == "stop" else "length",
                         last_token=None if response.finish_reason == "stop" else response.token)
            return
        stats.generated_tokens += 1
        stream.progress.generated_tokens = stats.generated_tokens
        if sequence.drafts is not None:
            sequence.drafts.tokens.extend((response.token,))
        sequence.detokenizer.add_token(response.token)
        try:
            stream.text(sequence.detokenizer.last_segment)
        except Exception as exc:  # this stream's pipeline failed: it leaves the batch with the error
            stream.cancel.set()
            stream.fail(exc)
        if not stream.wanted:
            finished.append(sequence.uid)

    def _remove(self, uids: list[int]) -> None:
        """Take streams out of the batch (cancelled, or their sink is done) and finish them."""
        uids = [uid for uid in uids if uid in self.active]
        if not uids:
            return
        try:
            caches = self._generator.remove(uids, return_prompt_caches=True)
        except Exception as exc:
            log_internal_error("batch_remove_failed", exc)
            caches = {}
        for uid in uids:
            cache = caches.get(uid)
            self._finish(self.active[uid], cache[0] if cache is not None else None, "cancelled")

    def _finish(self, sequence: _Sequence, cache: Optional[list[Any]], reason: str,
                last_token: Optional[int] = None) -> None:
        import mlx.core as mx

        self.active.pop(sequence.uid, None)
        stream, stats = sequence.stream, sequence.stats
        if last_token is not None:  # max_tokens: the last token is part of the reply
            stats.generated_tokens += 1
            stream.progress.generated_tokens = stats.generated_tokens
            sequence.detokenizer.add_token(last_token)
        stats.finish_reason = reason
        sequence.detokenizer.finalize()
        if reason != "cancelled":
            try:
                stream.text(sequence.detokenizer.last_segment)
            except Exception as exc:
                stream.fail(exc)
        if stream.first_token is not None and sequence.last_token is not None:
            stats.decode_seconds = sequence.last_token - stream.first_token
        stats.peak_memory_gb = mx.get_peak_memory() / 1e9
        if cache is not None:
            try:
                kv.evaluate(cache)
                sequence.lease.cache = cache
                self.backend.prompt_cache.finish(sequence.lease)
            except Exception as exc:
                log_internal_error("prompt_cache_finish_failed", exc)
        stream.end(stats)

    def fail_all(self, exc: Exception) -> None:
        """The batch step itself failed: every stream in it fails with the error; the next request starts a
        fresh batch (and MLX's random state is repaired, as after a failed generation alone)."""
        from mlxclaude.engine.mlx_backend import reset_random_state

        log_internal_error("batch_step_failed", exc, streams=len(self.active))
        reset_random_state()
        sequences, self.active = list(self.active.values()), {}
        generator, self._generator = self._generator, None
        try:
            generator.close()
        except Exception:
            pass
        for sequence in sequences:
            sequence.stream.fail(exc)


