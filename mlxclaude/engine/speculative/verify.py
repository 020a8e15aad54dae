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
from typing import Any


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
    if not all(getattr(layer, "is_trimmable", lambda: False)() for layer in batch.prompt_cache):
        return None  # sliding-window or linear-attention layers cannot be cut back (no snapshot taken yet)
    return batch


def verify(batch: Any, drafts: list[int]) -> Verified:
    import mlx.core as mx

    pending = batch._next_tokens  # sampled by the previous step, not in the cache yet
    inputs = mx.concatenate([pending, mx.array(drafts, dtype=pending.dtype)])
    logits = batch.model(inputs[None], cache=batch.prompt_cache)[0]
    processors = batch.logits_processors[0] or ()
    sampler = (batch.samplers[0] if batch.samplers else None) or batch.fallback_sampler
    emitted = [int(pending.item())]
    emitted_logprobs = [batch._next_logprobs[0]]
    for position in range(len(drafts) + 1):
        row = logits[position:position + 1]
        if processors:
            context = batch._token_context[0].update_and_fetch(inputs[position:position + 1])
            for processor in processors:
                row = processor(context, row)
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
    unused = len(drafts) - accepted
    if unused:
        for layer in batch.prompt_cache:
            layer.trim(unused)
    return Verified(responses=_responses(batch, emitted, emitted_logprobs), drafted=len(drafts), accepted=accepted)


def _responses(batch: Any, emitted: list[int], logprobs: list) -> list:
    """What `next()` would have returned over as many plain steps, stopping at the first finish (the cache cut
    back to the tokens up to it, as a plain step leaves it)."""
    responses = []
    uid = batch.uids[0]
    for index, token in enumerate(emitted):
        batch.tokens[0].append(token)
        batch._num_tokens[0] += 1
        finish = None
        if batch._num_tokens[0] >= batch.max_tokens[0]:
            finish = "length"
        if batch._matchers[0].advance(token):
            finish = "stop"
        if finish is None:
            responses.append(batch.Response(uid=uid, token=token, logprobs=logprobs[index], finish_reason=None,
                                            prompt_cache=None, all_tokens=None))
            continue
        beyond = len(emitted) - 1 - index
        if beyond:
            for layer in batch.prompt_cache:
                layer.trim(beyond)
        responses.append(batch.Response(uid=uid, token=token, logprobs=logprobs[index], finish_reason=finish,
                                        prompt_cache=batch.extract_cache(0), all_tokens=batch.tokens[0]))
        batch.filter([])
        break
    return responses
