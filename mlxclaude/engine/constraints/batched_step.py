"""mlx-lm's decode step with every row's constraint applied as one operation.

mlx-lm (0.32) sends the whole batch down a per-row loop as soon as one row has a logits processor: each row is
sliced out, its token buffer updated, its processors called, and the rows concatenated again. Every Claude Code
request has tools, so every row has one, and the loop costs Python and device work per row per step. Here each
constrained row's processor says what it allows next (`ConstraintProcessor.allowed`: None while the row is in
free text, the common case), and the rows that have a mask get it in one `where` over the batch; a step where no
row has one leaves the logits alone. In free text a row's mask would depend on the token drawn just before,
still being computed (does it complete a tool-call marker?); rather than build that condition on the device for
every row at every step, the step reads the token as it does anyway, and in the rare step where it did open a
call, draws that row's next token again from the same logits under the call's mask (`draw_again`). Everything
else is mlx-lm's step as it is (the same sampler grouping, the same pipelining: the next tokens are sampled lazily
while the current ones are read), so the logits each row's sampler sees are the ones the per-row loop would give,
bit for bit.

`install` puts this step on the generator's one GenerationBatch (created with the generator and only ever
extended); a new stream's first token comes from the batch mlx-lm builds for it, through the per-row loop as
before. A row with a processor that is not ours, or an mlx-lm whose batch looks different, keeps mlx-lm's step.
"""

from __future__ import annotations

from types import MethodType
from typing import Any, Optional, Sequence

_USES = ("_step", "_next_tokens", "_next_logprobs", "_current_tokens", "_current_logprobs", "logits_processors",
         "samplers", "fallback_sampler", "tokens", "prompt_cache", "model")


def install(generator: Any) -> bool:
    """Give the generator's GenerationBatch the batched step (False: this mlx-lm's batch is not the one known)."""
    batch = getattr(generator, "_generation_batch", None)
    if batch is None or not all(hasattr(batch, name) for name in _USES):
        return False
    original = type(batch)._step
    batch._step = MethodType(lambda self: batched_step(self, original), batch)
    return True


def ours(processors: Sequence[Optional[Sequence[Any]]]) -> bool:
    """Whether every row's processors can say what they allow (ConstraintProcessor.allowed, .pass_told, .tell)."""
    return all(hasattr(processor, "allowed") and hasattr(processor, "pass_told") and hasattr(processor, "tell")
               for row in processors for processor in row or ())


def masked(logits: Any, newest: Any, processors: Sequence[Optional[Sequence[Any]]], *, told: bool = False) -> Any:
    """`logits` (rows × vocab) with each row's constraint applied; `newest`: each row's token sampled just before.
    Every processor is one of ours (`ours`). `told`: the caller hands each processor its newest token once read
    (`tell`)."""
    import mlx.core as mx

    width = logits.shape[-1]
    masks: list[Any] = []
    any_mask = False
    for row, row_processors in enumerate(processors):
        allowed = None
        for processor in row_processors or ():
            if told and processor.pass_told(width):
                continue
            mask = processor.allowed(newest[row], width, told=told)
            if mask is not None:
                allowed = mask if allowed is None else mx.logical_and(allowed, mask)
        masks.append(allowed)
        any_mask = any_mask or allowed is not None
    if not any_mask:
        return logits
    everything = mx.ones((width,), dtype=mx.bool_)
    rows = mx.stack([mask if mask is not None else everything for mask in masks])
    return mx.where(rows, logits, -mx.inf)


def logprobs_of(logits: Any) -> Any:
    """Log-probabilities over the last axis, computed as mlx-lm's step does (the samplers see the same bits)."""
    import mlx.core as mx

    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def row_samplers(batch: Any) -> list[Any]:
    """Each row's sampler (the batch's fallback where a row has none)."""
    return [batch.fallback_sampler if s is None else s for s in (batch.samplers or [None] * len(batch.uids))]


def sample(samplers: Sequence[Any], logprobs: Any) -> Any:
    """One token per row of `logprobs`: one call when the rows share a sampler (a greedy batch), as mlx-lm does."""
    import mlx.core as mx

    if all(sampler is samplers[0] for sampler in samplers):
        return samplers[0](logprobs)
    return mx.concatenate([sampler(logprobs[row:row + 1]) for row, sampler in enumerate(samplers)], axis=0)


def batched_step(batch: Any, original: Any) -> tuple[list[int], list[Any]]:
    import mlx.core as mx

    if not any(batch.logits_processors) or not ours(batch.logits_processors):
        return original(batch)
    batch._current_tokens = batch._next_tokens
    batch._current_logprobs = batch._next_logprobs
    inputs = batch._current_tokens
    logits = batch.model(inputs[:, None], cache=batch.prompt_cache)[:, -1, :]
    logits = masked(logits, inputs, batch.logits_processors, told=True)
    logprobs = logprobs_of(logits)
    samplers = row_samplers(batch)
    batch._next_tokens = sample(samplers, logprobs)
    batch._next_logprobs = list(logprobs)
    mx.async_eval(batch._next_tokens, batch._next_logprobs)
    mx.eval(inputs, batch._current_logprobs)
    tokens = inputs.tolist()
    again: dict[int, Any] = {}
    for row, (row_tokens, token, processors) in enumerate(zip(batch.tokens, tokens, batch.logits_processors)):
        row_tokens.append(token)
        for processor in processors or ():
            mask = processor.tell(token)  # read here anyway: the processors schedule no read of their own
            if mask is not None:
                again[row] = mask if row not in again else mx.logical_and(again[row], mask)
    if again:
        draw_again(batch, logits, samplers, again)
    return tokens, batch._current_logprobs


def draw_again(batch: Any, logits: Any, samplers: Sequence[Any], masks: dict[int, Any]) -> None:
    """The rows whose newest token, read only after their next one was drawn, opened a tool call: their next
    token drawn again from the same logits under the call's mask, exactly as a step that knew would have."""
    import mlx.core as mx

    tokens = batch._next_tokens
    rows = mx.arange(tokens.shape[0])
    for row, mask in masks.items():
        logprobs = logprobs_of(mx.where(mask, logits[row:row + 1], -mx.inf))
        tokens = mx.where(rows == row, samplers[row](logprobs), tokens)
        batch._next_logprobs[row] = logprobs[0]
    batch._next_tokens = tokens
    mx.async_eval(batch._next_tokens, batch._next_logprobs)
