"""The batch engine (engine/batching.py) driven step by step on the test's thread, tiny real model: the same
greedy tokens as mlx-lm's generate_step alone, prompt-cache checkpoints at segment ends (plain and
untrimmable caches), the KV budget, and models it cannot batch."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mlxclaude import logs
from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.batching import BatchEngine
from mlxclaude.engine.cache.store import Tier
from mlxclaude.engine.jobs import GenerationRequest, Stream
from mlxclaude.engine.mlx_backend import MlxBackend
from mlxclaude.protocol.chat import ChatRequest, Sampling
from support.chats import conversation

pytestmark = pytest.mark.mlx
NEVER = 1


class Collect:
    """A sink that keeps the text and the stats."""

    def __init__(self) -> None:
        self.text, self.stats, self.done = "", None, False

    def feed(self, text):
        self.text += text
        return []

    def end(self, stats):
        self.stats = stats
        return []


def rotating(backend: MlxBackend) -> MlxBackend:
    """The same model with caches that cannot be cut back (as sliding-window models have)."""
    from mlx_lm.models.cache import RotatingKVCache

    backend.model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in backend.model.layers]
    backend.prompt_cache = type(backend.prompt_cache)(backend.model, backend.tokenizer, max_bytes=1 << 28)
    assert not backend.prompt_cache.trimmable
    return backend


@pytest.fixture(params=["plain", "rotating"])
def backend(request, tiny_model_dir):
    made = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28)
    made.tokenizer.eos_token_ids = [NEVER]
    return rotating(made) if request.param == "rotating" else made


def ask(text: str, max_tokens: int = 32, **fields) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": text}], max_tokens=max_tokens,
                       sampling=Sampling(temperature=0.0), **fields)


def stream_of(backend, chat: ChatRequest) -> tuple[Stream, Collect]:
    sink = Collect()
    request = GenerationRequest(backend.render(chat), chat, chat.max_tokens, sink)
    return Stream(request=request, emit=lambda items: None, close=lambda: None), sink


def run_batch(engine: BatchEngine, streams: list[Stream], *, until=None) -> None:
    for stream in streams:
        engine.add(stream)
    while engine.has_work:
        engine.step()
        if until is not None and until():
            return


def alone(backend, chat: ChatRequest) -> tuple[str, GenerationStats]:
    items = list(backend.generate(backend.render(chat), chat, chat.max_tokens, threading.Event()))
    return "".join(items[:-1]), items[-1]


def test_batched_greedy_tokens_are_generate_steps_alone(backend):
    asks = [ask("Write a short greeting.", 48), ask("def foo(x):", 20), ask("The lazy dog sleeps. " * 30, 40),
            ask("import os", 33)]
    expected = [alone(backend, chat)[0] for chat in asks]
    backend.prompt_cache.clear()
    engine = backend.batcher(max_batch=4)
    pairs = [stream_of(backend, chat) for chat in asks]
    run_batch(engine, [stream for stream, _ in pairs])
    assert engine.largest_batch == 4
    for (stream, sink), chat, text in zip(pairs, asks, expected):
        assert sink.text == text
        assert sink.stats.generated_tokens == chat.max_tokens and sink.stats.finish_reason == "length"
        assert sink.stats.prompt_tokens == stream.prompt_tokens and sink.stats.extra["batch"] >= 1


def test_checkpoints_are_taken_at_segment_ends(backend):
    engine = backend.batcher(max_batch=2)
    first, second = conversation("batch-s")[:2]
    stream, sink = stream_of(backend, replace(first, max_tokens=6))
    prompt = stream.request.prompt
    head = prompt.tokens[:prompt.system_end]
    seen_while_prefilling: list[bool] = []
    run_batch(engine, [stream], until=lambda: seen_while_prefilling.append(
        stream.progress.phase == "prefill" and backend.prompt_cache.store.get(head) is not None) or False)
    assert any(seen_while_prefilling), "the system prefix was stored only after the generation"
    assert backend.prompt_cache.store.get(head).tier == Tier.SYSTEM
    limit = len(prompt.tokens) - 1
    if not backend.prompt_cache.trimmable:  # the prompt less its last token, snapshotted mid-prefill
        assert backend.prompt_cache.store.get(prompt.tokens[:limit]) is not None
    follow, follow_sink = stream_of(backend, replace(second, max_tokens=4))
    run_batch(engine, [follow])
    reused = follow_sink.stats.cached_tokens
    assert reused == (len(prompt.tokens) if backend.prompt_cache.trimmable else limit)
    assert follow_sink.stats.cache_note == "hit"


def test_the_kv_budget_admits_one_stream_at_a_time_when_two_do_not_fit(tiny_model_dir):
    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28)
    assert BatchEngine(backend, max_batch=4).bytes_per_token == 2 * 2 * 32 * 4  # K and V, 2 heads of 32 floats
    engine = BatchEngine(backend, max_batch=4, kv_budget=40 * 512)  # room for one 16 + 24 token reservation
    pairs = [stream_of(backend, ask("hi", 16)), stream_of(backend, ask("yo", 16))]
    run_batch(engine, [stream for stream, _ in pairs])
    assert engine.largest_batch == 1
    assert all(sink.stats.generated_tokens > 0 for _, sink in pairs)


def test_a_model_the_batcher_cannot_serve_runs_one_at_a_time_logged_once(tiny_model_dir, tmp_path):
    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28)
    backend.model.make_cache = lambda: [_NoMerge() for _ in backend.model.layers]
    log_file = tmp_path / "log.jsonl"
    logs.configure(log_file, echo=False)
    try:
        assert backend.batcher(max_batch=8) is None
    finally:
        logs.configure(None)
    assert '"batching_off"' in log_file.read_text() and "_NoMerge" in log_file.read_text()


class _NoMerge:
    """A cache layer mlx-lm cannot merge into a batch."""


def test_short_chunks_while_shared_leave_the_tokens_alone(tiny_model_dir):
    """A long prompt prefilled in chunks of 1024 alone and of 128 while a short one shares the batch: the same
    greedy tokens as generate_step's 1024-token chunks, and the short one is done long before the long one."""
    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28, prefill_step_size=1024)
    backend.tokenizer.eos_token_ids = [NEVER]
    long_ask, short_ask = ask("The lazy dog sleeps by the fire. " * 300, 24), ask("hi", 6)
    expected = [alone(backend, chat)[0] for chat in (long_ask, short_ask)]
    backend.prompt_cache.clear()
    engine = backend.batcher(max_batch=2)
    assert engine.chunk_size() == 1024
    (long_stream, long_sink), (short_stream, short_sink) = stream_of(backend, long_ask), stream_of(backend, short_ask)
    assert long_stream.prompt_tokens > 2048
    engine.add(long_stream)
    engine.step()  # the long prompt's first chunk, alone
    chunks = []
    run_batch(engine, [short_stream], until=lambda: chunks.append(engine.chunk_size()) or False)
    assert 128 in chunks
    assert [long_sink.text, short_sink.text] == expected
    assert short_sink.stats.ttft_seconds < long_sink.stats.ttft_seconds


TOOLS = [{"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]


def test_constrained_rows_decode_batched_with_the_tokens_they_get_alone(tiny_model_dir, monkeypatch):
    """Forced calls, free text under tools, no tools: the batch applies the rows' masks in one operation
    (engine/constraints/batched_step.py) and every reply is the one it gets alone, mlx-lm's per-row loop's."""
    from mlxclaude.engine.constraints import batched_step
    from mlxclaude.protocol.chat import ToolChoice

    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28)
    asks = [ask("Run ls.", 40, tools=TOOLS, tool_choice=ToolChoice(type="tool", name="Bash")),
            ask("Write a short greeting.", 40, tools=TOOLS),
            ask("List the files.", 40, tools=TOOLS, tool_choice=ToolChoice(type="any")),
            ask("def foo(x):", 24)]
    expected = [alone(backend, chat)[0] for chat in asks]
    assert expected[0].startswith("<tool_call>") and expected[2].startswith("<tool_call>")

    masks = []
    real_masked = batched_step.masked
    monkeypatch.setattr(batched_step, "masked", lambda logits, newest, processors, **how: masks.append(
        sum(1 for row in processors if row)) or real_masked(logits, newest, processors, **how))
    assert batched_then_per_row(backend, asks, monkeypatch) == [expected, expected]
    assert max(masks) == 3  # three constrained rows in one step of the batched run


def batched_then_per_row(backend, asks: list[ChatRequest], monkeypatch) -> list[list[str]]:
    """The replies to `asks` decoded as one batch: on the batched step, then on mlx-lm's per-row loop."""
    from mlxclaude.engine.constraints import batched_step

    replies = []
    for batched in (True, False):
        if not batched:
            monkeypatch.setattr(batched_step, "install", lambda generator: False)
        backend.prompt_cache.clear()
        engine = backend.batcher(max_batch=len(asks))
        pairs = [stream_of(backend, chat) for chat in asks]
        run_batch(engine, [stream for stream, _ in pairs])
        assert engine.largest_batch == len(asks) and engine.batched_constraints is batched
        replies.append([sink.text for _, sink in pairs])
        engine.close()
    return replies


def marker_prone(marker: int):
    """Greedy, except that it writes the tool-call marker wherever the marker is allowed and the greedy token's
    id is a multiple of 5: a random model's reply that opens a call after some text, decided by the logits alone
    (so an unmasked draw thrown away and drawn again is the draw a masked step makes)."""
    import mlx.core as mx

    def sampler(logprobs):
        best = mx.argmax(logprobs, axis=-1)
        open_call = mx.logical_and(logprobs[:, marker] > -mx.inf, best % 5 == 0)
        return mx.where(open_call, mx.array(marker, dtype=best.dtype), best)

    return sampler


def test_a_call_opened_mid_text_in_a_batch_draws_its_next_token_as_a_masked_step_would(tiny_model_dir, monkeypatch):
    """In free text the batched step masks nothing; when the token it reads opens a call, the token drawn after it
    meanwhile is drawn again under the call's mask. The replies are mlx-lm's per-row loop's, which masks every
    step on the device."""
    from mlxclaude.engine import batching
    from mlxclaude.engine.constraints import batched_step

    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28)
    marker = backend.tokenizer.convert_tokens_to_ids("<tool_call>")
    monkeypatch.setattr(batching, "make_mlx_sampler", lambda sampling, vocab: marker_prone(marker))
    prone = replace(ask("Write a short greeting.", 40, tools=TOOLS), sampling=Sampling(temperature=1.0))
    asks = [prone, replace(prone, messages=[{"role": "user", "content": "Say hello."}]),
            ask("List the files.", 30, tools=TOOLS), ask("def foo(x):", 24)]
    drawn_again: list[list[int]] = []
    real_draw_again = batched_step.draw_again
    monkeypatch.setattr(batched_step, "draw_again", lambda batch, logits, samplers, masks: (
        drawn_again.append(sorted(masks)), real_draw_again(batch, logits, samplers, masks)))
    replies = batched_then_per_row(backend, asks, monkeypatch)
    assert replies[0] == replies[1]
    assert drawn_again  # the batched run met calls opened mid-text (the per-row run never draws again)
    for text in replies[0][:3]:
        assert "<tool_call>" in text and not text.startswith("<tool_call>")
