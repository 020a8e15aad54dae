"""One verify step for the streams decoding in mlx-lm's BatchGenerator: each row's pending token and its drafted
tokens go through the model in one forward (rows with fewer drafts padded at the end, where causal attention
keeps the padding from every real position); position by position, the logits of the rows still accepting go
through their logits processors and samplers, exactly as plain steps would, and each row's drafts are accepted up
to the first that differs from its sample, which becomes its pending token.

Exact: the processors (constrained tool calls) only ever see accepted tokens, since a position's input is the
pending token or a draft accepted just before; with a greedy sampler the output is the plain one token for
token; a sampled stream draws each token from the same distribution (a drafted token is kept iff the sample
equals it).

The cache is then cut back to each row's accepted tokens. KV layers: trimmed by the fewest any row rejected;
a row's further rejected positions are rolled to its left padding (BatchKVCache's own right-padding roll, as
for a right-padded prompt chunk), where the mask hides them. Layers that cannot be trimmed (linear-attention or
SSM state, sliding windows) are snapshotted before the forward and, when a draft is rejected, restored and the
accepted tokens fed again (one more forward, over those tokens only); that is done for a stream decoding alone
(`decoding` offers no batch of several rows with such layers).

It works on the GenerationBatch's own state (mlx-lm 0.32's attributes), as its `_step` and `next` do: the tokens
in the cache, the pending tokens and their logprobs, the stop matchers and the counts against max_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from mlxclaude.engine.constraints.batched_step import logprobs_of, masked, ours, row_samplers, sample


@dataclass
class Verified:
    responses: list  # GenerationBatch.Response, one per token each row gets, as `next()` returns them
    drafted: int = 0
    accepted: int = 0
    by_uid: dict[int, tuple[int, int]] = field(default_factory=dict)  # uid → (drafted, accepted)


def decoding(generator: Any) -> Any:
    """The GenerationBatch when it is all there is to step (no prompt being processed) and a verify step can cut
    its cache back: one row with any cache, or several rows whose layers all trim and roll. Else None."""
    batch = generator._generation_batch
    if not len(batch) or len(generator._prompt_batch) or generator._unprocessed_sequences:
        return None
    if not ours(batch.logits_processors):
        return None
    if len(batch) > 1 and not all(cuttable(layer) and hasattr(layer, "finalize") for layer in batch.prompt_cache):
        return None
    return batch


def cuttable(layer: Any) -> bool:
    """Whether a cache layer is cut back by trimming (a sliding window is not: it may wrap during the forward)."""
    return bool(getattr(layer, "is_trimmable", lambda: False)()) and not hasattr(layer, "max_size")


def snapshot(cache: list) -> list[tuple[Any, Any]]:
    """The state of each layer that cannot be trimmed, held apart from the layer's arrays (a cache may write into
    its array objects in place; a new array object keeps the values it had)."""
    import mlx.core as mx

    def held(value: Any) -> Any:
        if isinstance(value, mx.array):
            return mx.array(value)
        if isinstance(value, (list, tuple)):
            return type(value)(held(item) for item in value)
        return value

    return [(layer, held(layer.state)) for layer in cache if not cuttable(layer)]


def cut_back(batch: Any, saved: list[tuple[Any, Any]], inputs: Any, kept: int) -> None:
    """One row: leave the cache holding the first `kept` of the `inputs` (its row) the verify forward fed."""
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


def cut_back_rows(cache: list, rejected: list[int]) -> None:
    """Several rows: each row's last `rejected[i]` positions leave its cache (all layers trim and roll)."""
    fewest = min(rejected)
    if fewest:
        for layer in cache:
            layer.trim(fewest)
    beyond = [count - fewest for count in rejected]
    if any(beyond):
        for layer in cache:
            layer.prepare(right_padding=beyond)
            layer.finalize()


def verify(batch: Any, drafts: list[list[int]]) -> Verified:
    """`drafts`: each row's drafted tokens, in the batch's row order (at least one row has some)."""
    import mlx.core as mx

    rows = len(batch.uids)
    width = 1 + max(len(row) for row in drafts)
    pending = batch._next_tokens  # sampled by the previous step, not in the cache yet
    pending_ids = pending.tolist()
    inputs = mx.array([[pending_ids[row], *drafts[row], *[pending_ids[row]] * (width - 1 - len(drafts[row]))]
                       for row in range(rows)], dtype=pending.dtype)
    saved = snapshot(batch.prompt_cache) if rows == 1 else []
    logits = batch.model(inputs, cache=batch.prompt_cache)
    samplers = row_samplers(batch)
    emitted = [[token] for token in pending_ids]
    emitted_logprobs = [[logprobs] for logprobs in batch._next_logprobs]
    next_tokens: list[Any] = [None] * rows
    next_logprobs: list[Any] = [None] * rows
    alive = list(range(rows))
    for position in range(width):
        index = mx.array(alive)
        row_logits = masked(logits[index, position], inputs[index, position],
                            [batch.logits_processors[row] if batch.logits_processors else () for row in alive])
        logprobs = logprobs_of(row_logits)
        sampled = sample([samplers[row] for row in alive], logprobs)
        still = []
        for slot, (row, token) in enumerate(zip(alive, sampled.tolist())):
            if position < len(drafts[row]) and token == drafts[row][position]:
                emitted[row].append(token)
                emitted_logprobs[row].append(logprobs[slot])
                still.append(row)
            else:
                next_tokens[row], next_logprobs[row] = sampled[slot], logprobs[slot]
        alive = still
        if not alive:
            break
    finishes = [_advance(batch, row, emitted[row]) for row in range(rows)]
    kept = [len(emitted[row]) if finishes[row] is None else finishes[row][0] + 1 for row in range(rows)]
    if rows == 1:
        cut_back(batch, saved, inputs[0], kept[0])
    else:
        cut_back_rows(batch.prompt_cache, [width - count for count in kept])
    batch._next_tokens = mx.stack(next_tokens)
    batch._next_logprobs = next_logprobs
    return _respond(batch, drafts, emitted, emitted_logprobs, kept, finishes)


def _advance(batch: Any, row: int, emitted: list[int]) -> Optional[tuple[int, str]]:
    """Count a row's emitted tokens as `next()` would over as many plain steps, up to the first finish: its index
    and reason (None: no finish)."""
    for index, token in enumerate(emitted):
        batch.tokens[row].append(token)
        batch._num_tokens[row] += 1
        finish = None
        if batch._num_tokens[row] >= batch.max_tokens[row]:
            finish = "length"
        if batch._matchers[row].advance(token):
            finish = "stop"
        if finish is not None:
            return index, finish
    return None


def _respond(batch: Any, drafts: list[list[int]], emitted: list[list[int]], logprobs: list[list[Any]],
             kept: list[int], finishes: list[Optional[tuple[int, str]]]) -> Verified:
    verified = Verified(responses=[])
    keep = []
    for row, uid in enumerate(batch.uids):
        tokens = emitted[row][:kept[row]]
        responses = [batch.Response(uid=uid, token=token, logprobs=logprobs[row][index], finish_reason=None,
                                    prompt_cache=None, all_tokens=None) for index, token in enumerate(tokens)]
        finish = finishes[row]
        if finish is None:
            keep.append(row)
        else:
            responses[-1].finish_reason = finish[1]
            responses[-1].prompt_cache = batch.extract_cache(row)
            responses[-1].all_tokens = batch.tokens[row]
        verified.responses.extend(responses)
        accepted = len(emitted[row]) - 1
        verified.by_uid[uid] = (len(drafts[row]), accepted)
        verified.drafted += len(drafts[row])
        verified.accepted += accepted
    if len(keep) < len(batch.uids):
        batch.filter(keep)
    return verified
