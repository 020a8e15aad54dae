"""The prompt cache of a vision model: a few conversations' KV caches, each keyed by its tokens with every
image's tokens named by the image's content.

Two screenshots of the same size render to the same run of image-pad ids; keyed by ids alone, the second would
reuse the first's KV cache. Here each image token of the key is (image digest, index in the run), so the next
turn of a conversation reuses the prefix holding its own image, and a different image ends the match there.
mlx-vlm's stream_generate does the reuse itself (trim to the shared prefix, Qwen-style mRoPE state, only when
what is left is text); it asks `find_prefix_length`, which answers by content here.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

KeyItem = Hashable  # a token id, or (digest, index) for an image token

DEFAULT_SLOTS = 2


def content_key(tokens: Sequence[int], image_token_ids: frozenset[int], digests: Sequence[str]) -> list[KeyItem]:
    """`tokens` with the n-th run of image tokens named by the n-th image's digest (runs past the digests keep ids)."""
    key: list[KeyItem] = []
    run = -1
    index = 0
    previous_was_image = False
    for token in tokens:
        if token in image_token_ids:
            if not previous_was_image:
                run, index = run + 1, 0
            key.append((digests[run], index) if run < len(digests) else token)
            index += 1
            previous_was_image = True
        else:
            key.append(token)
            previous_was_image = False
    return key


def shared_prefix(first: Sequence[KeyItem], second: Sequence[KeyItem]) -> int:
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


def keyed_state_class() -> type:
    """mlx-vlm's PromptCacheState answering by content keys (built lazily: only engine/ imports mlx_vlm)."""
    from mlx_vlm.generate import PromptCacheState

    class KeyedState(PromptCacheState):
        def __init__(self) -> None:
            super().__init__()
            self.key: list[KeyItem] = []
            self.pending: list[KeyItem] = []

        def find_prefix_length(self, new_ids: list) -> int:
            if self.cache is None:
                return 0
            return min(shared_prefix(self.key, self.pending), len(new_ids))

        def update(self, token_ids: list, kv_cache: list) -> None:
            super().update(token_ids, kv_cache)
            self.key = [*self.pending, *token_ids[len(self.pending):]]

        def forget(self) -> None:
            self.cache, self.token_ids, self.key = None, None, []

    return KeyedState


class VisionPrefixCache:
    """At most `slots` conversations; a request takes the slot sharing the longest prefix with it, or the least
    recently used one (emptied). A generation that does not run to its end leaves its slot empty: mlx-vlm
    trimmed and extended that KV cache in place, so it no longer matches the key it had."""

    def __init__(self, slots: int = DEFAULT_SLOTS) -> None:
        self._state_class = keyed_state_class()
        self._slots: list[Any] = [self._state_class() for _ in range(max(1, slots))]  # most recent last
        self.hits = self.misses = self.prompt_tokens = self.cached_tokens = 0

    def take(self, key: list[KeyItem]) -> tuple[Any, int]:
        """The slot for a prompt with content key `key`, and how many of its tokens that slot holds."""
        best, best_length = None, 0
        for state in self._slots:
            length = shared_prefix(state.key, key) if state.cache is not None else 0
            if length > best_length:
                best, best_length = state, length
        if best is None:
            best = self._slots[0]
            best.forget()
        self._slots.remove(best)
        self._slots.append(best)
        best.pending = key
        return best, best_length

    def finished(self, state: Any, *, complete: bool, prompt_tokens: int, reused: int) -> None:
        if not complete:
            state.forget()
        self.hits += bool(reused)
        self.misses += not reused
        self.prompt_tokens += prompt_tokens
        self.cached_tokens += reused

    def facts(self) -> dict:
        held = [state for state in self._slots if state.cache is not None]
        return {"kind": "vision", "entries": len(held), "slots": len(self._slots),
                "tokens": sum(len(state.key) for state in held),
                "bytes": sum(getattr(layer, "nbytes", 0) for state in held for layer in state.cache),
                "hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.cached_tokens / self.prompt_tokens, 4) if self.prompt_tokens else 0.0}

    def clear(self) -> None:
        for state in self._slots:
            state.forget()
