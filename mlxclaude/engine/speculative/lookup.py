"""Prompt lookup: drafts are what followed the last occurrence of the newest few tokens earlier in the prompt or
the reply. Claude Code's replies copy their context (an Edit's old_string, a rewritten file, quoted code), so the
tokens after a repeated n-gram are often the ones the model is about to write. Pure."""

from __future__ import annotations

from typing import Sequence

MAX_NGRAM = 4
MIN_NGRAM = 2
MAX_DRAFT = 8


class PromptLookup:
    """An index of every n-gram (n = MIN_NGRAM…MAX_NGRAM) of the tokens so far → where its latest continuation
    starts. Appending a token costs O(MAX_NGRAM); drafting is a dictionary lookup per n, longest first."""

    def __init__(self, tokens: Sequence[int] = (), *, max_ngram: int = MAX_NGRAM, min_ngram: int = MIN_NGRAM) -> None:
        self.max_ngram, self.min_ngram = max_ngram, min_ngram
        self.tokens: list[int] = []
        self._index: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            end = len(self.tokens)  # the n-grams ending just before `token` continue with it
            for n in range(self.min_ngram, self.max_ngram + 1):
                if end >= n:
                    self._index[tuple(self.tokens[end - n:end])] = end
            self.tokens.append(token)

    def draft(self, limit: int = MAX_DRAFT, *, after: int | None = None) -> list[int]:
        """Up to `limit` tokens that followed the longest recent n-gram matching the tail (the tokens so far, then
        `after` when given: a token sampled but not yet added), or none."""
        tail = self.tokens[-self.max_ngram:] + ([after] if after is not None else [])
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(tail) < n:
                continue
            start = self._index.get(tuple(tail[-n:]))
            if start is not None:
                return self.tokens[start:start + limit]
        return []
