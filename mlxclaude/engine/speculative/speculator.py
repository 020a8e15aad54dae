"""Speculation as the batched engine runs it: each stream's drafters and record, the step costs measured across
streams, and the choice each step between a verify step and a plain one (engine/batching.py asks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

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

    def drafts(self, pending: int, tokenizer: Any, limit: int) -> list[int]:
        """Up to `limit` tokens to follow `pending`: the first drafter with something to say wins."""
        if self.lookup:
            found = self.tokens.draft(limit, after=pending)
            if found:
                return found
            tail = tokenizer.decode([*self.tokens.tokens[-TAIL_TOKENS:], pending])
            text = self.text.continuation(tail)
            if text:
                return list(tokenizer.encode(text, add_special_tokens=False))[:limit]
        if self.model is not None:
            return self.model.drafts(self.tokens.tokens, pending, limit)
        return []


class Speculator:
    def __init__(self, mode: str, tokenizer: Any, draft_model: Optional[DraftModel] = None,
                 note: Optional[str] = None) -> None:
        self.mode = mode  # auto | off | lookup | draft | mtp (engine/speculative/policy.py MODES)
        self.note = note  # why it is not the mode asked for (engine/speculative/mtp.py)
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
        return {"mode": self.mode, "asked": "mtp" if self.note else None, "note": self.note,
                "draft_model": self.draft_model.name if self.draft_model else None,
                "drafted": self.drafted, "accepted": self.accepted,
                "verify_steps": self.verify_steps, "verify_cost": round(self.costs.ratio(MAX_DRAFT), 2)}

    def step(self, generator: Any, stream: Optional[StreamDrafts]) -> tuple[list, list, Optional[Verified]]:
        """One step of the BatchGenerator: a verify step when `stream` (the one stream there is, None with
        speculation off) decodes alone and the policy expects drafts to pay, else a plain step (timed when the
        stream decodes alone: the yardstick a verify step is weighed against). The policy is asked before any
        drafting, so a plain step costs no drafter work and keeps mlx-lm's pipeline (the pending token unread)."""
        batch = lone_stream(generator) if stream is not None else None
        if batch is not None:
            assert stream is not None
            verified = self._verify(generator, batch, stream)
            if verified is not None:
                return [], verified.responses, verified
        started = time.perf_counter()
        prompt_responses, generation_responses = generator.next()
        if batch is not None:
            assert stream is not None
            self.costs.plain(time.perf_counter() - started)
            stream.acceptance.plain_steps += 1
            stream.acceptance.since_probe += 1
        return prompt_responses, generation_responses, None

    def _verify(self, generator: Any, batch: Any, stream: StreamDrafts) -> Optional[Verified]:
        import mlx.core as mx

        room = batch.max_tokens[0] - batch._num_tokens[0] - 1  # the pending token takes one
        budget = min(draft_length(self.mode, MAX_DRAFT, stream.acceptance, self.costs), room)
        if budget <= 0:
            return None
        with mx.stream(generator.stream):
            drafts = stream.drafts(int(batch._next_tokens.item()), self.tokenizer, budget)
            if not drafts:
                return None
            started = time.perf_counter()
            verified = verify(batch, drafts)
        self.costs.verify(len(drafts), time.perf_counter() - started)
        stream.acceptance.verified(verified.drafted, verified.accepted)
        self.drafted, self.accepted = self.drafted + verified.drafted, self.accepted + verified.accepted
        self.verify_steps += 1
        return verified
