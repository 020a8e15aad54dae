"""The prompt cache on the tiny real model: reuse is exact (same logits as a fresh prefill), checkpoints,
side requests, caches that cannot be trimmed, the byte cap."""

from __future__ import annotations

import threading

import pytest

from mlxclaude.engine.cache import kv
from mlxclaude.engine.cache.prompt_cache import PromptCache
from mlxclaude.engine.cache.store import Tier
from mlxclaude.engine.render import render_chat
from support.chats import ChatRequest, call, chat, conversation, result, run, user

pytestmark = pytest.mark.mlx

def test_each_turn_reuses_the_previous_prompt_exactly(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    assert cache.trimmable
    previous = None
    for index, request in enumerate(conversation()):
        prompt, lease = run(cache, model, tokenizer, request)
        if index == 0:
            assert lease.note == "miss" and lease.extra["miss_reason"] == "no entry"
        else:
            assert lease.note == "hit" and lease.reused == len(previous.tokens)
            assert lease.extra["cache_entry"] == "turn"
        previous = prompt
    facts = cache.facts()
    assert facts["tiers"]["system"]["entries"] == 1
    assert facts["tiers"]["turn"]["entries"] == 1  # older turn-ends of the session are subsumed
    assert facts["sessions"]["s1"]["hits"] == 2


def test_a_new_conversation_reuses_the_system_and_tools_prefix(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    run(cache, model, tokenizer, conversation("s1")[0])
    prompt, lease = run(cache, model, tokenizer, conversation("s2", opening="why is the build red")[0])
    assert prompt.system_end is not None and lease.reused == prompt.system_end
    assert lease.note == "hit" and lease.extra["cache_entry"] == "system"
    assert cache.store.get(prompt.tokens[:prompt.system_end]).tier == Tier.SYSTEM
    # an opening that shares words with an earlier one reuses those too (cut back from that entry)
    prompt, lease = run(cache, model, tokenizer, conversation("s3", opening="list the python files")[0])
    assert lease.reused > prompt.system_end and lease.note == "partial"
    assert lease.extra["diverged_role"] == "user" and lease.extra["diverged_message"] == 1


def test_an_edited_history_reuses_up_to_the_divergence(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    requests = conversation()
    for request in requests[:2]:
        run(cache, model, tokenizer, request)
    edited = chat(user("list the files here"), call("ls -la"), result("a.txt\nb.txt\nc.txt"))
    prompt, lease = run(cache, model, tokenizer, edited)
    assert lease.note == "partial"
    assert lease.extra["diverged_role"] == "tool" and lease.extra["diverged_message"] == 3
    assert prompt.system_end < lease.reused == lease.extra["diverged_at"] < len(prompt.tokens)


def test_side_requests_reuse_but_never_evict_the_session(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    for request in conversation()[:2]:
        run(cache, model, tokenizer, request)
    session_entries = [entry for entry in cache.store.entries if entry.tier > Tier.SIDE]
    cache.store.set_max_bytes(cache.store.nbytes + 1000)  # full: only side entries could make room
    title = ChatRequest(model="m", messages=[{"role": "system", "content": "Write a title."}, user("list files")],
                        json_schema={"type": "object"}, session_id="s1", kind="title")
    _, lease = run(cache, model, tokenizer, title)
    probe = chat(user("list the files here"), kind="probe")
    _, probe_lease = run(cache, model, tokenizer, probe)
    assert probe_lease.reused > 0 and probe_lease.moved is None  # cloned, not taken from the session
    assert all(entry in cache.store.entries for entry in session_entries)
    assert all(entry.tier == Tier.SIDE for entry in cache.store.entries if entry not in session_entries)
    prompt, lease = run(cache, model, tokenizer, conversation()[2])
    assert lease.note == "hit" and lease.extra["cache_entry"] == "turn"


def test_byte_cap_is_respected_with_real_caches(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=400_000)
    for session in ("a", "b", "c", "d"):
        for request in conversation(session, opening=f"task {session}")[:2]:
            run(cache, model, tokenizer, request)
            assert cache.store.nbytes <= 400_000
            assert cache.store.nbytes == sum(kv.cache_nbytes(entry.payload) for entry in cache.store.entries)
    assert cache.store.evictions > 0


def test_caches_that_cannot_be_trimmed_hit_at_checkpoints(tiny_model_dir):
    from mlx_lm import load
    from mlx_lm.models.cache import RotatingKVCache

    model, tokenizer = load(str(tiny_model_dir))
    model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in model.layers]
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    assert not cache.trimmable
    requests = conversation()
    first, lease = run(cache, model, tokenizer, requests[0])
    assert sorted(lease.stored) == [first.system_end, len(first.tokens) - 1]
    assert cache.store.get(first.tokens[:first.system_end]).tier == Tier.SYSTEM
    _, lease = run(cache, model, tokenizer, requests[1])
    assert lease.note == "hit" and lease.reused == len(first.tokens) - 1
    other, lease = run(cache, model, tokenizer, conversation("s2", opening="list the python files")[0])
    assert lease.reused == other.system_end and lease.extra["cache_entry"] == "system"
    assert lease.extra["diverged_at"] > other.system_end  # it shared more, but could not cut back to it


def test_cancel_during_a_checkpoint_prefill_stops_early(tiny_model_dir):
    from mlx_lm import load
    from mlx_lm.models.cache import RotatingKVCache

    model, tokenizer = load(str(tiny_model_dir))
    model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in model.layers]
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30, prefill_step_size=16)
    request = conversation()[0]
    prompt = render_chat(tokenizer, request, None, None)
    cancel = threading.Event()
    cancel.set()
    lease = cache.begin(prompt, request, cancel)
    assert lease.offset == 0 and len(cache.store) == 0


def test_untrimmable_side_requests_checkpoint_their_system_prompt_low_and_main_requests_promote_it(tiny_model_dir):
    from mlx_lm import load
    from mlx_lm.models.cache import RotatingKVCache

    model, tokenizer = load(str(tiny_model_dir))
    model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in model.layers]
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    probe = chat(user("list the files here"), kind="probe")
    prompt, _ = run(cache, model, tokenizer, probe)
    head = cache.store.get(prompt.tokens[:prompt.system_end])
    assert head.tier == Tier.SIDE and head.session is None
    _, lease = run(cache, model, tokenizer, conversation()[0])
    assert lease.extra["cache_entry"] == "side" and lease.reused >= prompt.system_end
    assert head.tier == Tier.SYSTEM and cache.store.get(prompt.tokens[:prompt.system_end]) is head


def test_a_miss_after_eviction_says_so(tiny_model):
    model, tokenizer = tiny_model
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    first, second = conversation("evicted")[:2]
    run(cache, model, tokenizer, first)
    cache.store.set_max_bytes(0)  # everything goes
    cache.store.set_max_bytes(1 << 30)
    _, lease = run(cache, model, tokenizer, second)
    assert lease.note == "miss" and "evicted (byte cap)" in lease.extra["miss_reason"]
