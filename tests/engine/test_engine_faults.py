"""An engine failure is that request's failure only: MLX's random state is repaired after it, and a
top_k at or above the vocabulary never fails at all (real MLX engine, tiny model)."""

from __future__ import annotations

import threading

import pytest

from mlxclaude.engine import mlx_backend
from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.mlx_backend import MlxBackend
from mlxclaude.protocol.chat import ChatRequest, Sampling

pytestmark = pytest.mark.mlx


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return MlxBackend(str(tiny_model_dir), context_limit=2048, cache_max_bytes=64 * 1024**2)


def sampled(backend, sampling: Sampling) -> GenerationStats:
    chat = ChatRequest(model="m", messages=[{"role": "user", "content": "Say something."}], max_tokens=6,
                       sampling=sampling)
    items = list(backend.generate(backend.render(chat), chat, 6, threading.Event()))
    assert isinstance(items[-1], GenerationStats)
    return items[-1]


@pytest.mark.parametrize("top_k", [8192, 10**9])
def test_top_k_at_or_above_the_vocabulary_means_no_top_k(backend, top_k):
    assert backend.vocab_size == 8192
    assert sampled(backend, Sampling(temperature=1.0, top_k=top_k)).generated_tokens > 0


def test_a_sampler_that_fails_inside_mlx_does_not_poison_later_requests(backend, monkeypatch):
    from mlx_lm.sample_utils import make_sampler

    def mlx_lms_own_check(sampling, vocab_size):  # what top_k=vocab did before it was mapped to "no top-k"
        return make_sampler(temp=1.0, top_k=vocab_size)

    with monkeypatch.context() as patch:
        patch.setattr(mlx_backend, "make_mlx_sampler", mlx_lms_own_check)
        with pytest.raises(ValueError, match="top_k"):
            sampled(backend, Sampling(temperature=1.0))
    for _ in range(2):
        # a poisoned random state raises here; a sampled reply may be EOS at once (0 tokens) and still fine
        assert sampled(backend, Sampling(temperature=1.0, top_k=40, top_p=0.9)).finish_reason in ("stop", "length")
