"""Speculation as the batched engine runs it: each stream's drafters and record, the step costs measured per
batch size, and the choice each step between a verify step and a plain one (engine/batching.py asks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mlxclaude.engine.speculative.draft_model import DraftModel, DraftStream
from mlxclaude.engine.speculative.lookup import MAX_DRAFT, PromptLookup
from mlxclaude.engine.speculative.policy import Acceptance, StepCosts, draft_length, pays
from mlxclaude.engine.speculative.text_lookup import TextLookup
from mlxclaude.engine.speculative.verify import Verified, decoding, verify

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
        if limit <= 0:
            return []
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
        self.costs: dict[int, StepCosts] = {}  # by the number of streams decoding
        self.drafted = self.accepted = self.verify_steps = 0  # since start, for GET /mlxclaude/status
        self.largest_verify_batch = 0

    def drafts_for(self, prompt: Any) -> Optional[StreamDrafts]:
        """A new stream's drafters (None with speculation off)."""
        if self.mode == "off":
            return None
        model = self.draft_model.stream() if self.draft_model is not None else None
        return StreamDrafts(PromptLookup(prompt.tokens), TextLookup(prompt.text), model=model,
                            lookup=self.mode != "draft")

    def facts(self) -> dict[str, Any]:
        alone = self.costs.get(1, StepCosts())
        return {"mode": self.mode, "asked": "mtp" if self.note else None, "note": self.note,
                "draft_model": self.draft_model.name if self.draft_model else None,
                "drafted": self.drafted, "accepted": self.accepted,
                "verify_steps": self.verify_steps, "largest_verify_batch": self.largest_verify_batch,
                "verify_cost": round(alone.ratio(MAX_DRAFT), 2)}

    def step(self, generator: Any, drafts_of: Callable[[int], Optional[StreamDrafts]]
             ) -> tuple[list, list, Optional[Verified]]:
        """One step of the BatchGenerator: a verify step when every stream in it is decoding (no prompt being
        processed), has drafters (`drafts_of(uid)`; None with speculation off) and the policy expects drafts to pay
        at this batch size; else a plain step (timed when they all decode: the yardstick a verify step is weighed
        against). The policy is asked before any drafting, so a plain step costs no drafter work and keeps
        mlx-lm's pipeline (the pending tokens unread)."""
        batch = decoding(generator) if self.mode != "off" else None
        rows: list[StreamDrafts] = []
        if batch is not None:
            found = [drafts_of(uid) for uid in batch.uids]
            rows = [row for row in found if row is not None] if all(row is not None for row in found) else []
        if rows:
            verified = self._verify(generator, batch, rows)
            if verified is not None:
                return [], verified.responses, verified
        started = time.perf_counter()
        prompt_responses, generation_responses = generator.next()
        if rows:
            self.costs.setdefault(len(rows), StepCosts()).plain(time.perf_counter() - started)
            for row in rows:
                row.acceptance.plain_steps += 1
                row.acceptance.since_probe += 1
        return prompt_responses, generation_responses, None

    def _verify(self, generator: Any, batch: Any, rows: list[StreamDrafts]) -> Optional[Verified]:
        import mlx.core as mx

        costs = self.costs.setdefault(len(rows), StepCosts())
        budget = draft_length(self.mode, MAX_DRAFT, [row.acceptance for row in rows], costs)
        if budget <= 0:
            return None
        with mx.stream(generator.stream):
            pending = batch._next_tokens.tolist()
            drafts = [row.drafts(pending[index], self.tokenizer,
                                 min(budget, batch.max_tokens[index] - batch._num_tokens[index] - 1))
                      for index, row in enumerate(rows)]  # the pending token takes one of a row's room
            if not any(drafts) or not pays(self.mode, [len(row) for row in drafts],
                                           [row.acceptance for row in rows], costs):
                return None
            uids = list(batch.uids)
            started = time.perf_counter()
            verified = verify(batch, drafts)
        costs.verify(max(len(row) for row in drafts), time.perf_counter() - started)
        for row, row_drafts, uid in zip(rows, drafts, uids):
            if row_drafts:
                row.acceptance.verified(*verified.by_uid[uid])
        self.drafted, self.accepted = self.drafted + verified.drafted, self.accepted + verified.accepted
        self.verify_steps += 1
        self.largest_verify_batch = max(self.largest_verify_batch, len(uids))
        return verified
