"""Speculation as the batched engine runs it: each stream's drafters and record, the step costs measured across
streams, and the choice each step between a verify step and a plain one (engine/batching.py asks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mlxclaude.engine.speculative.draft_model import DraftModel, DraftStream
from mlxclaude.engine.speculative.lookup import MAX_DRAFT, PromptLookup
from mlxclaude.engine.speculative.policy import Acceptance, StepCosts, draft_length
from mlxclaude.engine.speculative.text_lookup import TextLookup
from mlxclaude.engine.speculative.verify import Verified, lone_stream, verify

TAIL_TOKENS = 24  # the reply's last tokens, as text, that the text drafter looks up


@dataclass
class StreamDrafts:
    """One stream's drafters (its prompt and reply so far, by tokens and by text; a draft model's stream when one
    is configured) and its acceptance record. `lookup`: whether the lookups draft (not in `draft` mode)."""
    tokens: PromptLookup
    text: TextLookup
    model: Optional[DraftStream] = None
    lookup: bool = True
    acceptance: Acceptance = field(default_factory=Acceptance)

    def drafts(self, pending: int, tokenizer: Any) -> list[int]:
        if self.lookup:
            found = self.tokens.draft(MAX_DRAFT, after=pending)
            if found:
                return found
            tail = tokenizer.decode([*self.tokens.tokens[-TAIL_TOKENS:], pending])
            text = self.text.continuation(tail)
            if text:
                return list(tokenizer.encode(text, add_special_tokens=False))[:MAX_DRAFT]
        if self.model is not None:
            return self.model.drafts(self.tokens.tokens, pending, MAX_DRAFT)
        return []


class Speculator:
    def __init__(self, mode: str, tokenizer: Any, draft_model: Optional[DraftModel] = None) -> None:
        self.mode = mode  # auto | off | lookup | draft
        self.tokenizer = tokenizer
        self.draft_model = draft_model if mode in ("auto", "draft") else None
        self.costs = StepCosts()
        self.drafted = self.accepted = self.verify_steps = 0  # since start, for GET /mlxclaude/status

    def drafts_for(self, prompt: Any) -> Optional[StreamDrafts]:
        """A new stream's drafters (None with speculation off)."""
        if self.mode == "off":
            return None
        model = self.draft_model.stream() if self.draft_model is not None else None
        return StreamDrafts(PromptLookup(prompt.tokens), TextLookup(prompt.text), model=model,
                            lookup=self.mode != "draft")

    def facts(self) -> dict[str, Any]:
        return {"mode": self.mode, "draft_model": self.draft_model.name if self.draft_model else None,
                "drafted": self.drafted, "accepted": self.accepted,
                "verify_steps": self.verify_steps, "verify_cost": round(self.costs.ratio(MAX_DRAFT), 2)}

    def plain_step(self, generator: Any, stream: Optional[StreamDrafts]) -> tuple[list, list]:
        """One BatchGenerator step; timed when `stream` (the one stream there is) decodes alone: the yardstick a
        verify step is weighed against."""
        alone = stream is not None and lone_stream(generator) is not None
        started = time.perf_counter()
        responses = generator.next()
        if alone:
            assert stream is not None
            self.costs.plain(time.perf_counter() - started)
            stream.acceptance.plain_steps += 1
            stream.acceptance.since_probe += 1
        return responses

    def verify_step(self, generator: Any, stream_of: Callable[[int], Optional[StreamDrafts]]) -> Optional[Verified]:
        """A verify step instead of a plain one, when one stream decodes alone, its drafters have a draft and the
        policy expects it to pay; None otherwise."""
        import mlx.core as mx

        if self.mode == "off":
            return None
        batch = lone_stream(generator)
        stream = stream_of(batch.uids[0]) if batch is not None else None
        if batch is None or stream is None:
            return None
        with mx.stream(generator.stream):
            drafts = stream.drafts(int(batch._next_tokens.item()), self.tokenizer)
            room = batch.max_tokens[0] - batch._num_tokens[0] - 1  # the pending token takes one
            k = min(draft_length(self.mode, len(drafts), stream.acceptance, self.costs), room)
            if k <= 0:
                return None
            started = time.perf_counter()
            verified = verify(batch, drafts[:k])
        self.costs.verify(k, time.perf_counter() - started)
        stream.acceptance.verified(verified.drafted, verified.accepted)
        self.drafted, self.accepted = self.drafted + verified.drafted, self.accepted + verified.accepted
        self.verify_steps += 1
        return verified
