"""Anthropic sampling parameters -> an mlx-lm sampler."""

from __future__ import annotations

from mlxclaude.protocol.chat import Sampling


def make_mlx_sampler(sampling: Sampling, vocab_size: int):
    """top_k at or above the vocabulary keeps every token, so it means "no top-k" (mlx-lm would raise)."""
    from mlx_lm.sample_utils import make_sampler

    top_k = int(sampling.top_k) if sampling.top_k else 0
    return make_sampler(
        temp=max(0.0, float(sampling.effective_temperature)),
        top_p=float(sampling.top_p) if sampling.top_p is not None and 0 < sampling.top_p < 1 else 0.0,
        top_k=top_k if 0 < top_k < vocab_size else 0,
    )
