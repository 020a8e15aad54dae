"""mlx-lm cache objects: sizes, trimming, prefix snapshots and a chunked prefill.

MLX arrays are immutable values: a snapshot that shares buffers with a live cache is safe (the live
cache's next in-place update copies instead of writing into a buffer someone else holds), so `clone`
is cheap copy-on-write. `compact_prefix` makes a real, tight copy where a snapshot must not pin the
whole (larger) buffer it came from.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable, Optional, Sequence

# Cache classes whose is_trimmable() is unconditionally true: the whole cache can be cut back to any
# shorter prefix. RotatingKVCache (only while it has not wrapped), ArraysCache and the SSM/linear
# attention states cannot, so for them snapshots are taken during the prefill, at the checkpoints.
TRIMMABLE_CLASSES = ("KVCache", "QuantizedKVCache", "ConcatenateKVCache")


def layers_of(cache: Sequence[Any]) -> list[Any]:
    flat: list[Any] = []
    for layer in cache:
        inner = getattr(layer, "caches", None)
        if type(layer).__name__ == "CacheList" and inner is not None:
            flat.extend(layers_of(inner))
        else:
            flat.append(layer)
    return flat


def always_trimmable(cache: Sequence[Any]) -> bool:
    return all(type(layer).__name__ in TRIMMABLE_CLASSES for layer in layers_of(cache))


def cache_length(cache: Sequence[Any]) -> Optional[int]:
    """Tokens held, read from the first layer that counts them (None when no layer does)."""
    for layer in layers_of(cache):
        offset = getattr(layer, "offset", None)
        if isinstance(offset, int):
            return offset
    return None


def cache_nbytes(cache: Sequence[Any]) -> int:
    total = 0
    for layer in layers_of(cache):
        try:
            total += int(layer.nbytes)
        except (NotImplementedError, AttributeError, TypeError):
            total += sum(int(getattr(array, "nbytes", 0)) for array in _arrays_of(layer.state))
    return total


def bytes_per_token(model: Any) -> float:
    """KV bytes one more token takes in `model`'s cache (state of constant size, as SSM layers keep, not counted)."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array([[0]]), cache=cache)
    evaluate(cache)
    total = 0.0
    for layer in layers_of(cache):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if keys is None or values is None:
            continue
        arrays = _arrays_of(keys) + _arrays_of(values)
        length = arrays[0].shape[-2] if arrays and arrays[0].ndim >= 2 else 0
        if length:
            total += sum(int(array.nbytes) for array in arrays) / length
    return total


def _arrays_of(state: Any) -> list[Any]:
    if isinstance(state, (list, tuple)):
        return [array for item in state for array in _arrays_of(item)]
    return [state] if hasattr(state, "nbytes") else []


def evaluate(cache: Sequence[Any]) -> None:
    import mlx.core as mx

    mx.eval([layer.state for layer in layers_of(cache)])


def trim_to(cache: list[Any], length: int) -> bool:
    """Cut a trimmable cache back to `length` tokens in place."""
    from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

    held = cache_length(cache)
    if held is None:
        return False
    if held > length:
        if not can_trim_prompt_cache(cache):
            return False
        trim_prompt_cache(cache, held - length)
    return cache_length(cache) == length


def clone(cache: list[Any]) -> list[Any]:
    """An independent cache object sharing (copy-on-write) the arrays."""
    return copy.deepcopy(cache)


def clone_prefix(cache: list[Any], length: int) -> Optional[list[Any]]:
    """A copy-on-write clone cut back to `length` tokens; None when the cache cannot be cut there."""
    held = cache_length(cache)
    if held == length:
        return clone(cache)
    if held is None or held < length or not always_trimmable(cache):
        return None
    copied = clone(cache)
    return copied if trim_to(copied, length) else None


def compact_prefix(cache: list[Any], length: int) -> Optional[list[Any]]:
    """A tight, evaluated copy of the first `length` tokens: owns exactly `length` tokens of memory."""
    import mlx.core as mx
    from mlx_lm.models.cache import KVCache

    if any(type(layer) is not KVCache for layer in cache) or cache_length(cache) is None:
        snapshot = clone_prefix(cache, length)
        if snapshot is not None:
            evaluate(snapshot)
        return snapshot
    if cache_length(cache) < length:
        return None
    snapshot = []
    for layer in cache:
        fresh = KVCache()
        fresh.keys = mx.contiguous(layer.keys[..., :length, :])
        fresh.values = mx.contiguous(layer.values[..., :length, :])
        fresh.offset = length
        snapshot.append(fresh)
    evaluate(snapshot)
    return snapshot


def prefill(model: Any, cache: list[Any], tokens: Sequence[int], *, step: int,
            cancel: Optional[threading.Event] = None,
            progress: Optional[Callable[[int], None]] = None) -> int:
    """Run `tokens` through the model into `cache` in chunks, as mlx-lm's generate_step does.

    Returns how many tokens went in (fewer than asked when `cancel` was set part way).
    """
    import mlx.core as mx
    from mlx_lm.generate import generation_stream

    done = 0
    with mx.stream(generation_stream):
        while done < len(tokens):
            if cancel is not None and cancel.is_set():
                break
            chunk = tokens[done:done + step]
            model(mx.array(chunk)[None], cache=cache)
            mx.eval([layer.state for layer in cache])
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
            mx.clear_cache()
    return done
