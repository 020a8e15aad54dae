"""A single-slot token-prefix KV cache: reuse the longest common prefix with the previous prompt."""

from __future__ import annotations

from typing import Any


def common_prefix_length(a: list[int], b: list[int]) -> int:
    limit = min(len(a), len(b))
    i = 0
    while i < limit and a[i] == b[i]:
        i += 1
    return i


class PrefixSlot:
    def __init__(self, model: Any) -> None:
        self._model = model
        self._cache: list[Any] | None = None
        self._tokens: list[int] = []

    def take(self, prompt: list[int]) -> tuple[list[Any], int, str]:
        """Return (cache, reused token count, note); the cache then belongs to the caller until `keep`."""
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        cache, cached_tokens, self._cache, self._tokens = self._cache, self._tokens, None, []
        if cache is None:
            return make_prompt_cache(self._model), 0, "miss: no entry"
        reuse = min(common_prefix_length(cached_tokens, prompt), len(prompt) - 1)
        if reuse <= 0:
            return make_prompt_cache(self._model), 0, "miss: diverged at token 0"
        excess = cached_tokens_in(cache) - reuse
        if excess > 0:
            if not can_trim_prompt_cache(cache):
                return make_prompt_cache(self._model), 0, "miss: cache cannot be trimmed"
            trim_prompt_cache(cache, excess)
        note = "hit" if reuse == len(cached_tokens) else f"partial: diverged at token {reuse}"
        return cache, reuse, note

    def keep(self, cache: list[Any], prompt: list[int]) -> None:
        """Store the cache for the prompt just processed (generated tokens are trimmed off)."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        excess = cached_tokens_in(cache) - len(prompt)
        if excess > 0:
            if not can_trim_prompt_cache(cache):
                return
            trim_prompt_cache(cache, excess)
        held = cached_tokens_in(cache)
        self._cache, self._tokens = cache, list(prompt[:held])

    def clear(self) -> None:
        self._cache, self._tokens = None, []


def cached_tokens_in(cache: list[Any]) -> int:
    first = cache[0]
    offset = getattr(first, "offset", None)
    if isinstance(offset, int):
        return offset
    return int(first.size()) if hasattr(first, "size") else 0
