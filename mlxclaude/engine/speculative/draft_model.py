"""A draft model as a drafter: a small model sharing the main model's tokenizer proposes the next tokens greedily.
Each stream keeps the draft model's own KV cache in step with its tokens (cut back to what the main model
accepted, then fed what is new), so a draft costs the draft model's forwards only."""

from __future__ import annotations

from typing import Any, Optional

from mlxclaude.engine.speculative.vocab import same_vocabulary

PREFILL_CHUNK = 2048


class DraftModel:
    """The loaded draft model, shared by the streams; None from `load` when it cannot draft for this model."""

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name

    @classmethod
    def load(cls, path: str, main_tokenizer: Any) -> "DraftModel":
        from mlx_lm import load as mlx_load

        model, tokenizer = mlx_load(path)
        problem = same_vocabulary(main_tokenizer, tokenizer)
        if problem is not None:
            raise ValueError(f"draft_model {path} cannot draft for this model: {problem}")
        return cls(model, path)

    def stream(self) -> Optional["DraftStream"]:
        from mlx_lm.models.cache import make_prompt_cache

        cache = make_prompt_cache(self.model)
        if not all(layer.is_trimmable() for layer in cache):
            return None
        return DraftStream(self.model, cache)


class DraftStream:
    def __init__(self, model: Any, cache: list) -> None:
        self.model = model
        self.cache = cache
        self.held: list[int] = []  # the tokens in the draft cache, in order

    def drafts(self, tokens: list[int], pending: int, limit: int) -> list[int]:
        import mlx.core as mx

        context = [*tokens, pending]
        common = 0
        for held, token in zip(self.held, context):
            if held != token:
                break
            common += 1
        common = min(common, len(context) - 1)  # the last token is always fed: its logits give the first draft
        if len(self.held) > common:
            for layer in self.cache:
                layer.trim(len(self.held) - common)
        new = context[common:]
        for start in range(0, len(new) - 1, PREFILL_CHUNK):
            chunk = new[start:min(start + PREFILL_CHUNK, len(new) - 1)]
            self.model(mx.array(chunk)[None], cache=self.cache)
            mx.eval([layer.state for layer in self.cache])
        logits = self.model(mx.array(new[-1:])[None], cache=self.cache)
        proposed: list[int] = []
        for index in range(limit):
            token = int(mx.argmax(logits[0, -1]).item())
            proposed.append(token)
            if index + 1 < limit:
                logits = self.model(mx.array([[token]]), cache=self.cache)
        self.held = [*context, *proposed[:-1]]
        return proposed
