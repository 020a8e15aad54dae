"""The engine reports how far a prefill has got (GenerationProgress), on the real tiny MLX model: chunk by chunk
through mlx-lm's generate_step, and through the prompt cache's own prefill to checkpoints (caches that cannot
be cut back), counting only the tokens not reused from the cache."""

from __future__ import annotations

import threading

import pytest

from mlxclaude.engine.backend import GenerationProgress, GenerationStats
from mlxclaude.engine.mlx_backend import MlxBackend
from mlxclaude.protocol.chat import ChatRequest, Sampling

pytestmark = pytest.mark.mlx
STEP = 32


class Recorded(GenerationProgress):
    """A GenerationProgress that keeps every value prefilled() was given, and the phase at each."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.phases: list[str] = []

    def prefilled(self, done: int) -> None:
        super().prefilled(done)
        self.steps.append(self.prefill_done)
        self.phases.append(self.phase)


def long_chat(session: str = "s1", words: int = 400, *, system: str = "You are terse.") -> ChatRequest:
    text = " ".join(f"line {i} of the file says nothing much" for i in range(words // 8))
    return ChatRequest(model="m", messages=[{"role": "system", "content": system},
                                            {"role": "user", "content": f"Summarise this:\n{text}"}],
                       max_tokens=3, sampling=Sampling(temperature=0.0), session_id=session)


def run(backend: MlxBackend, chat: ChatRequest) -> tuple[Recorded, GenerationStats, int]:
    progress = Recorded()
    prompt = backend.render(chat)
    items = list(backend.generate(prompt, chat, chat.max_tokens, threading.Event(), progress))
    stats = items[-1]
    assert isinstance(stats, GenerationStats)
    return progress, stats, len(prompt.tokens)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return MlxBackend(str(tiny_model_dir), prefill_step_size=STEP)


def test_progress_follows_each_prefill_chunk_then_the_decode(backend):
    chat = long_chat()
    progress, stats, prompt_tokens = run(backend, chat)
    new = prompt_tokens - stats.cached_tokens
    assert prompt_tokens > 6 * STEP and stats.cached_tokens == 0
    assert progress.prompt_tokens == prompt_tokens and progress.prefill_total == new
    chunks = [done for done in progress.steps if 0 < done < new]
    assert len(chunks) >= new // STEP - 1  # one report per chunk of STEP tokens
    assert chunks[0] == STEP and all(b - a == STEP for a, b in zip(chunks, chunks[1:-1]))  # the last one: the rest
    assert progress.steps == sorted(progress.steps) and set(progress.phases) == {"prefill"}
    assert progress.phase == "done" and progress.prefill_done == new
    assert progress.generated_tokens == stats.generated_tokens
    assert progress.prefill_started is not None and progress.decode_started >= progress.prefill_started
    assert progress.prefill_tps() > 0


def test_a_cache_hit_counts_only_the_new_tokens(backend):
    first = long_chat("s2")
    _, stats, _ = run(backend, first)
    follow = ChatRequest(model="m", messages=first.messages + [{"role": "assistant", "content": "ok"},
                                                               {"role": "user", "content": "and now in one word?"}],
                         max_tokens=3, sampling=first.sampling, session_id="s2")
    progress, stats, prompt_tokens = run(backend, follow)
    assert stats.cached_tokens > 6 * STEP and progress.cached_tokens == stats.cached_tokens
    assert progress.prefill_total == prompt_tokens - stats.cached_tokens < STEP
    assert progress.prefill_done == progress.prefill_total


def test_the_prompt_caches_own_checkpoint_prefill_is_reported_too(tiny_model_dir):
    from mlx_lm.models.cache import RotatingKVCache

    backend = MlxBackend(str(tiny_model_dir), prefill_step_size=STEP)
    model = backend.model
    model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in model.layers]
    backend.prompt_cache._make = model.make_cache
    backend.prompt_cache.trimmable = False  # caches that cannot be cut back: prefill stops at checkpoints
    chat = long_chat("s3", system="You are terse. " + "Follow the house rules. " * 60)
    prompt = backend.render(chat)
    assert prompt.system_end and prompt.system_end > 2 * STEP
    progress, stats, prompt_tokens = run(backend, chat)
    # all but the last token go in inside the prompt cache, chunk by chunk, stopping at the system prompt's end
    assert prompt.system_end in progress.steps and prompt_tokens - 1 in progress.steps
    assert len([done for done in progress.steps if done <= prompt.system_end]) >= prompt.system_end // STEP
    assert progress.steps == sorted(progress.steps) and progress.prefill_done == prompt_tokens
