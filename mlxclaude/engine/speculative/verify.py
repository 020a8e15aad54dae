"""One verify step for the one stream decoding in mlx-lm's BatchGenerator: the pending token and k drafted tokens
go through the model in one forward; each position's logits go through the stream's logits processors and its
sampler in order, exactly as k+1 plain steps would, and the drafts are accepted up to the first that differs
from what was sampled. The KV cache is cut back to the accepted tokens.

Exact: the processors (constrained tool calls) only ever see accepted tokens, since position i's input is the
pending token or a draft accepted at i-1; with a greedy sampler the output is the plain one token for token; a
sampled stream draws each token from the same distribution (a drafted token is kept iff the sample equals it).

It works on the GenerationBatch's own state (mlx-lm 0.32's attributes), as its `_step` and `next` do: the tokens
in the cache, the pending token and its logprobs, the processors' token buffer, the stop matcher and the count
against max_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from mlxclaude.engine.constraints.batched_step import masked, ours


@dataclass
class Verified:
    responses: list  # GenerationBatch.Response, one per token the stream gets, as `next()` returns them
    drafted: int
    accepted: int


def lone_stream(generator: Any) -> Any:
    """The GenerationBatch when exactly one stream is decoding and no prompt is being processed, else None."""
    batch = generator._generation_batch
    if len(batch) != 1 or len(generator._prompt_batch) or generator._unprocessed_sequences:
        return None
    if not ours(batch.logits_processors):
        return None
    return batch


def cuttable(layer: Any) -> bool:
    """Whether a cache layer is cut back by trimming (a sliding window is not: it may wrap during the forward)."""
    return bool(getattr(layer, "is_trimmable", lambda: False)()) and not hasattr(layer, "max_size")


def snapshot(cache: list) -> list[tuple[Any, Any]]:
    """The state of each layer that cannot be trimmed, held apart from the layer's own arrays (a cache's slice
    update writes into its array object; a new array object keeps the values it had)."""
    import mlx.core as mx

    def held(value: Any) -> Any:
        if isinstance(value, mx.array):
            return mx.array(value)
        if isinstance(value, (list, tuple)):
            return type(value)(held(item) for item in value)
        return value

    return [(layer, held(layer.state)) for layer in cache if not cuttable(layer)]


def cut_back(batch: Any, saved: list[tuple[Any, Any]], inputs: Any, kept: int) -> None:
    """Leave the cache holding the first `kept` of the `inputs` the verify forward fed."""
    fed = len(inputs)
    if kept >= fed:
        return
    if not saved:
        for layer in batch.prompt_cache:
            layer.trim(fed - kept)
        return
    for layer in batch.prompt_cache:
        if cuttable(layer):
            layer.trim(fed)
    for layer, state in saved:
        layer.state = state
    if kept:
        batch.model(inputs[None, :kept], cache=batch.prompt_cache)


def verify(batch: Any, drafts: list[int]) -> Verified:
    import mlx.core as mx

    pending = batch._next_tokens  # sampled by the previous step, not in the cache yet
    inputs = mx.concatenate([pending, mx.array(drafts, dtype=pending.dtype)])
    saved = snapshot(batch.prompt_cache)
    logits = batch.model(inputs[None], cache=batch.prompt_cache)[0]
    processors = [batch.logits_processors[0] or ()]
    sampler = (batch.samplers[0] if batch.samplers else None) or batch.fallback_sampler
    emitted = [int(pending.item())]
    emitted_logprobs = [batch._next_logprobs[0]]
    for position in range(len(drafts) + 1):
        row = masked(logits[position:position + 1], inputs[position:position + 1], processors)
        logprobs = row - mx.logsumexp(row, axis=-1, keepdims=True)
        sampled = sampler(logprobs)
        token = int(sampled.item())
        if position < len(drafts) and token == drafts[position]:
            emitted.append(token)
            emitted_logprobs.append(logprobs[0])
            continue
        batch._next_tokens, batch._next_logprobs = sampled, [logprobs[0]]
        break
    accepted = len(emitted) - 1
    finish = _advance(batch, emitted)
    kept = len(emitted) if finish is None else finish[0] + 1
    cut_back(batch, saved, inputs, kept)
    uid = batch.uids[0]
    responses = [batch.Response(uid=uid, token=token, logprobs=emitted_logprobs[index], finish_reason=None,
                                prompt_cache=None, all_tokens=None) for index, token in enumerate(emitted[:kept])]
    if finish is not None:
        responses[-1].finish_reason = finish[1]
        responses[-1].prompt_cache = batch.extract_cache(0)
        responses[-1].all_tokens = batch.tokens[0]
        batch.filter([])
    return Verified(responses=responses, drafted=len(drafts), accepted=accepted)


def _advance(batch: Any, emitted: list[int]) -> Optional[tuple[int, str]]:
    """Count the emitted tokens as `next()` would over as many plain steps, up to the first finish: its index
    and reason (None: no finish)."""
    for index, token in enumerate(emitted):
        batch.tokens[0].append(token)
        batch._num_tokens[0] += 1
        finish = None
        if batch._num_tokens[0] >= batch.max_tokens[0]:
            finish = "length"
        if batch._matchers[0].advance(token):
            finish = "stop"
        if finish is not None:
            return index, finish
    return None
