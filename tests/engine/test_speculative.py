"""Speculative decoding (engine/speculative/): the drafter and the policy alone, then the real engine with the
tiny model — whose greedy replies fall into repeats that prompt lookup drafts — where the output with
speculation is the output without it, token for token: free and constrained, stop sequences, max_tokens."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from mlxclaude.engine.speculative.lookup import PromptLookup
from mlxclaude.engine.speculative.policy import PLAIN_FIRST, PROBE_DRAFT, PROBE_EVERY, Acceptance, StepCosts, draft_length

TOKEN = "spec-token"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
FILE = "\n".join(f"def function_{i}(value):\n    return value * {i} + {i * 3}" for i in range(8))


# --- the drafter -----------------------------------------------------------------------------------------


def test_lookup_drafts_what_followed_the_longest_recent_match():
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 9, 9])
    lookup.extend([1, 2, 3])
    assert lookup.draft(4) == [4, 5, 6, 7]  # [1, 2, 3] beats the more recent [2, 3]: longer n-grams first
    assert lookup.draft(3, after=4) == [5, 6, 7]
    assert lookup.draft(3, after=42) == []
    recent = PromptLookup([5, 2, 3, 8, 0, 2, 3, 9])
    recent.extend([7, 2, 3])
    assert recent.draft(4) == [9, 7, 2, 3]  # [2, 3] continued with 8, then with 9: the latest wins
    assert PromptLookup([5]).draft(after=5) == []


def test_lookup_never_drafts_past_the_tokens_it_has():
    lookup = PromptLookup([7, 7, 7])
    assert lookup.draft(8, after=7) == [7]  # [7, 7] was followed by one 7 so far


def test_text_lookup_sees_through_cat_n_line_numbers_and_json_escapes():
    from mlxclaude.engine.speculative.text_lookup import TextLookup

    numbered = "\n".join(f"{number:>6}\t{line}" for number, line in enumerate(FILE.splitlines(), start=1))
    lookup = TextLookup(f"Read result:\n{numbered}\nEdit it.")
    written = "def function_3(value):\n    return value * 3"  # the model writes the file's text, no line numbers
    assert lookup.continuation(written).startswith(" + 9\ndef function_4(value):")
    escaped = 'old_string": "def function_3(value):\\n    return value * 3'  # inside a tool call: JSON-escaped
    assert lookup.continuation(escaped).startswith(" + 9\\ndef function_4(value):\\n")
    assert lookup.continuation("nothing like the prompt at all, not even close") == ""
    assert TextLookup("short").continuation("short prompts are not indexed") == ""


# --- the policy ------------------------------------------------------------------------------------------


def test_on_a_bandwidth_bound_device_drafts_pay_on_a_compute_bound_one_only_when_nearly_all_are_accepted():
    cheap, dear = StepCosts(plain_s=0.02, plain_steps=10, slope=0.05), StepCosts(plain_s=0.2, plain_steps=10, slope=1.0)
    copying, chatting = Acceptance(rate=0.97), Acceptance(rate=0.4)
    assert draft_length("auto", 8, [copying], cheap) == 8
    assert draft_length("auto", 8, [chatting], cheap) > 0
    assert draft_length("auto", 8, [chatting], dear) == 0
    assert draft_length("lookup", 8, [chatting], dear) == 8 and draft_length("off", 8, [copying], cheap) == 0


def test_auto_times_plain_steps_first_then_tries_then_measures_again_now_and_then():
    stream, costs = Acceptance(rate=0.1), StepCosts()
    assert draft_length("auto", 5, [stream], costs) == 0  # no yardstick yet
    for _ in range(PLAIN_FIRST):
        costs.plain(0.2)
    assert draft_length("auto", 5, [stream], costs) == PROBE_DRAFT  # a first, short try
    costs.verify(PROBE_DRAFT, 0.6)  # 3 tokens for 3 plain steps' time: compute-bound
    assert costs.slope == pytest.approx(1.0)
    assert draft_length("auto", 5, [stream], costs) == 0
    stream.since_probe = PROBE_EVERY
    assert draft_length("auto", 5, [stream], costs) == PROBE_DRAFT
    stream.verified(2, 2)
    assert stream.since_probe == 0 and stream.rate > 0.1


def test_a_batch_verifies_only_while_the_drafts_its_rows_found_pay():
    from mlxclaude.engine.speculative.policy import pays

    busy = StepCosts(plain_s=0.02, plain_steps=10, slope=0.5)  # a batch that fills the device
    rows = [Acceptance(rate=0.97) for _ in range(4)]
    assert draft_length("auto", 8, rows, busy) >= 6
    assert pays("auto", [8, 8, 8, 8], rows, busy)
    assert not pays("auto", [8, 0, 0, 0], rows, busy)  # three rows found nothing: a full-width step for one
    assert pays("lookup", [8, 0, 0, 0], rows, busy)
    for row in rows:
        row.since_probe = PROBE_EVERY
    assert pays("auto", [1, 0, 0, 0], rows, busy)  # a try is made whatever it finds


def test_step_costs_follow_the_measurements():
    costs = StepCosts()
    costs.plain(0.1)
    costs.verify(4, 0.14)  # 5 tokens for 1.4 plain steps' time: bandwidth-bound
    assert costs.slope == pytest.approx(0.1)
    for _ in range(40):
        costs.verify(4, 0.5)  # the device got busy: 5 tokens for 5 plain steps
    assert costs.slope == pytest.approx(1.0, abs=0.05)


# --- the engine ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tiny_model_dir):
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon.serve import mlx_backend_loader
    from support.live_server import live_server

    opened = {}
    model = str(tiny_model_dir)
    with live_server(mlx_backend_loader(ServerSettings(model=model, speculative="off")),
                     auth_token=TOKEN) as plain, \
            live_server(mlx_backend_loader(ServerSettings(model=model, speculative="lookup")),
                        auth_token=TOKEN) as speculating, \
            live_server(mlx_backend_loader(ServerSettings(model=model, speculative="draft", draft_model=model)),
                        auth_token=TOKEN) as drafting:  # the model drafts for itself: its drafts are its choices
        opened["off"], opened["lookup"], opened["draft"] = plain, speculating, drafting
        yield opened


def ask(server, **body) -> dict:
    request = {"model": "claude-x", "max_tokens": 96, "temperature": 0, **body}
    response = httpx.post(f"{server.url}/v1/messages", json=request, headers={"x-api-key": TOKEN}, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()


def streamed_text(server, **body) -> str:
    request = {"model": "claude-x", "max_tokens": 96, "temperature": 0, "stream": True, **body}
    with httpx.stream("POST", f"{server.url}/v1/messages", json=request, headers={"x-api-key": TOKEN},
                      timeout=600) as response:
        deltas = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    return "".join(event["delta"].get("text", "") for event in deltas if event["type"] == "content_block_delta")


def spec_totals(server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", headers={"x-api-key": TOKEN}, timeout=30).text
    found = dict(re.findall(r'^mlxclaude_spec_tokens_total\{result="(\w+)"\} ([\d.e+]+)$', text, re.M))
    steps = re.search(r"^mlxclaude_decode_steps_total ([\d.e+]+)$", text, re.M)
    return {"accepted": float(found.get("accepted", 0)), "rejected": float(found.get("rejected", 0)),
            "steps": float(steps.group(1)) if steps else 0.0}


def replies_of(reply: dict) -> tuple:
    blocks = [{key: value for key, value in block.items() if key != "id"} for block in reply["content"]]
    return blocks, reply["stop_reason"], reply["usage"]["output_tokens"]


PROMPTS = [
    {"messages": [{"role": "user", "content": f"Repeat this file exactly:\n\n{FILE}"}]},
    {"messages": [{"role": "user", "content": "Write a long list of words."}], "max_tokens": 150},
    {"messages": [{"role": "user", "content": f"Fix the bug:\n\n{FILE}"}], "tools": [BASH]},
    {"messages": [{"role": "user", "content": "Run ls."}], "tools": [BASH],
     "tool_choice": {"type": "tool", "name": "Bash"}},
    {"messages": [{"role": "user", "content": f"Repeat:\n{FILE}"}], "stop_sequences": ["##", "value *"]},
    {"messages": [{"role": "user", "content": f"Repeat:\n{FILE}"}], "max_tokens": 7},
]


@pytest.mark.mlx
@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_greedy_replies_with_speculation_are_the_replies_without_it(servers, index):
    plain = ask(servers["off"], **PROMPTS[index])
    assert replies_of(ask(servers["lookup"], **PROMPTS[index])) == replies_of(plain)
    assert replies_of(ask(servers["draft"], **PROMPTS[index])) == replies_of(plain)


@pytest.mark.mlx
def test_a_draft_model_drafts_what_the_model_then_accepts(servers):
    before = spec_totals(servers["draft"])
    ask(servers["draft"], messages=[{"role": "user", "content": "Explain recursion in simple words."}], max_tokens=60)
    after = spec_totals(servers["draft"])
    accepted, rejected = after["accepted"] - before["accepted"], after["rejected"] - before["rejected"]
    assert accepted > 0 and accepted >= 4 * rejected  # the same model, greedy: nearly every draft is its own choice


def test_a_draft_model_must_share_the_tokenizer_and_draft_mode_needs_one(tiny_model_dir, smollm2_model_dir):
    from mlxclaude.engine.loader import ModelLoadError
    from mlxclaude.engine.mlx_backend import load_draft_model
    from mlxclaude.engine.speculative.vocab import same_vocabulary

    tokenizer = load_tokenizer(tiny_model_dir)
    assert same_vocabulary(tokenizer, tokenizer) is None
    assert "vocabulary has" in same_vocabulary(tokenizer, load_tokenizer(smollm2_model_dir))
    with pytest.raises(ModelLoadError, match="cannot draft for this model: its vocabulary has"):
        load_draft_model(str(smollm2_model_dir), tokenizer, "auto")
    with pytest.raises(ModelLoadError, match="needs a draft model: mlxclaude config set draft_model"):
        load_draft_model(None, tokenizer, "draft")
    assert load_draft_model(str(tiny_model_dir), tokenizer, "lookup") is None  # lookup mode loads none


def load_tokenizer(model_dir):
    from mlx_lm.tokenizer_utils import load

    return load(model_dir)


@pytest.mark.mlx
def test_speculation_drafts_checks_and_counts_and_streams_the_same_text(servers):
    before = spec_totals(servers["lookup"])
    body = {"messages": [{"role": "user", "content": "Write a long list of words."}], "max_tokens": 200}
    streamed = streamed_text(servers["lookup"], **body)
    assert streamed == streamed_text(servers["off"], **body)
    after = spec_totals(servers["lookup"])
    accepted, steps = after["accepted"] - before["accepted"], after["steps"] - before["steps"]
    assert accepted > 0 and after["rejected"] >= before["rejected"]
    assert steps < 200  # fewer forward passes than tokens: the tiny model's repeats were drafted and accepted
    assert spec_totals(servers["off"])["accepted"] == 0


@pytest.mark.mlx
def test_mtp_is_accepted_says_why_it_cannot_run_and_decodes_as_auto(tiny_model_dir, capsys):
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.engine.mlx_backend import MlxBackend

    assert ServerSettings(model=str(tiny_model_dir), speculative="mtp").speculative == "mtp"
    backend = MlxBackend(str(tiny_model_dir), speculative="mtp")
    try:
        assert backend.speculative == "auto"
        assert "does not load multi-token-prediction heads" in backend.speculative_note
        batcher = backend.batcher(max_batch=2)
        assert batcher is not None
        facts = batcher.facts()["speculative"]
        assert (facts["mode"], facts["asked"]) == ("auto", "mtp") and facts["note"] == backend.speculative_note
        assert "mtp_unavailable" in capsys.readouterr().err
    finally:
        backend.close()


@pytest.fixture(scope="module")
def hybrid_servers(tiny_hybrid_dir):
    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon.serve import mlx_backend_loader
    from support.live_server import live_server

    model = str(tiny_hybrid_dir)
    with live_server(mlx_backend_loader(ServerSettings(model=model, speculative="off")), auth_token=TOKEN) as plain, \
            live_server(mlx_backend_loader(ServerSettings(model=model, speculative="lookup")),
                        auth_token=TOKEN) as speculating:
        yield {"off": plain, "lookup": speculating}


HYBRID_PROMPTS = [
    {"messages": [{"role": "user", "content": "Write a list of words about the sea and ships"}], "max_tokens": 120},
    {"messages": [{"role": "user", "content": f"Repeat:\n{FILE}"}], "max_tokens": 80, "stop_sequences": ["h h"]},
    {"messages": [{"role": "user", "content": "Run ls."}], "tools": [BASH], "max_tokens": 60},
]


@pytest.mark.mlx
@pytest.mark.parametrize("index", range(len(HYBRID_PROMPTS)))
def test_a_linear_attention_hybrid_speculates_with_its_state_restored_and_replies_the_same(hybrid_servers, index):
    """Qwen3.5's layout: gated-delta layers whose state cannot be cut back are snapshotted before a verify
    forward and restored (the accepted tokens fed again) when a draft is rejected."""
    before = spec_totals(hybrid_servers["lookup"])
    plain = ask(hybrid_servers["off"], **HYBRID_PROMPTS[index])
    assert replies_of(ask(hybrid_servers["lookup"], **HYBRID_PROMPTS[index])) == replies_of(plain)
    after = spec_totals(hybrid_servers["lookup"])
    assert after["accepted"] > before["accepted"]
    if index == 0:
        assert after["rejected"] > before["rejected"]  # the restore path ran


def sliding(model_dir, speculative: str, window: int = 48):
    """The model with its attention layers' caches made sliding windows small enough to wrap within a reply."""
    from mlx_lm.models.cache import KVCache, RotatingKVCache

    from mlxclaude.engine.mlx_backend import MlxBackend

    backend = MlxBackend(str(model_dir), context_limit=4096, cache_max_bytes=1 << 28, speculative=speculative)
    made = backend.model.make_cache
    backend.model.make_cache = lambda: [RotatingKVCache(max_size=window) if type(layer) is KVCache else layer
                                        for layer in made()]
    backend.prompt_cache = type(backend.prompt_cache)(backend.model, backend.tokenizer, max_bytes=1 << 28)
    return backend


@pytest.mark.mlx
def test_a_sliding_window_that_wraps_mid_reply_speculates_and_replies_the_same(tiny_hybrid_dir):
    """Gemma's and gpt-oss's sliding windows (here beside the hybrid's linear-attention layers): a window that
    wraps during a verify forward cannot be trimmed; it is restored like the linear-attention state."""
    from support.live_server import live_server

    with live_server(lambda: sliding(tiny_hybrid_dir, "off"), auth_token=TOKEN) as plain, \
            live_server(lambda: sliding(tiny_hybrid_dir, "lookup"), auth_token=TOKEN) as speculating:
        for body in HYBRID_PROMPTS[:2]:
            assert replies_of(ask(speculating, **body)) == replies_of(ask(plain, **body))
        totals = spec_totals(speculating)
        assert totals["accepted"] > 0 and totals["rejected"] > 0  # the restore path ran


@pytest.mark.mlx
@pytest.mark.parametrize("kept", [0, 1, 3, 4])
def test_cutting_back_leaves_every_cache_kind_as_if_fed_only_the_kept_tokens(tiny_hybrid_dir, kept):
    """Linear-attention state (ArraysCache) and a sliding window that has wrapped (RotatingKVCache, in-place
    updates), after a 4-token verify forward cut back to `kept`: the next logits are those of a cache fed only
    the kept tokens. (Plain KV layers are trimmed: the other tests.)"""
    from types import SimpleNamespace

    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.models.cache import KVCache, RotatingKVCache

    from mlxclaude.engine.speculative.verify import cut_back, snapshot

    model, _ = load(str(tiny_hybrid_dir))

    def fresh():
        return [RotatingKVCache(max_size=16) if type(layer) is KVCache else layer for layer in model.make_cache()]

    prompt, fed, probe = mx.arange(100, 140)[None], mx.array([7, 8, 9, 10]), mx.array([[11]])
    spoken, reference = fresh(), fresh()
    assert {type(layer).__name__ for layer in spoken} == {"ArraysCache", "RotatingKVCache"}
    for cache in (spoken, reference):
        model(prompt, cache=cache)
        model(mx.array([[5]]), cache=cache)  # one decode step: the window updates in place from here
    saved = snapshot(spoken)
    model(fed[None], cache=spoken)
    cut_back(SimpleNamespace(prompt_cache=spoken, model=model), saved, fed, kept)
    if kept:
        model(fed[None, :kept], cache=reference)
    assert mx.allclose(model(probe, cache=spoken), model(probe, cache=reference), atol=1e-5).item()


@pytest.mark.mlx
def test_streams_decoding_together_verify_their_drafts_in_one_forward_and_reply_as_alone(servers):
    """Several streams in the batch, each with its own drafts and acceptance: one verify forward over all rows,
    each row's rejected positions cut from its own cache; every reply is the one plain decoding gives."""
    import threading

    asks = PROMPTS[:5]  # free text, tools, a forced call, a stop sequence
    expected = [replies_of(ask(servers["off"], **body)) for body in asks]
    speculating = servers["lookup"]
    before = speculating.worker.batcher.speculator.facts()
    barrier = threading.Barrier(len(asks))
    replies: dict[int, tuple] = {}

    def one(index: int) -> None:
        barrier.wait()
        replies[index] = replies_of(ask(speculating, **asks[index]))

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(asks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert [replies[index] for index in range(len(asks))] == expected
    after = speculating.worker.batcher.speculator.facts()
    assert after["largest_verify_batch"] >= 2 and after["accepted"] > before["accepted"]
    assert after["drafted"] - before["drafted"] > after["accepted"] - before["accepted"]  # some rejected: rows cut apart


@pytest.mark.mlx
def test_a_stream_cancelled_mid_reply_leaves_the_batch_and_the_others_reply_as_alone(servers):
    import threading

    speculating = servers["lookup"]
    expected = replies_of(ask(servers["off"], **PROMPTS[0]))
    started = threading.Event()

    def leave_early() -> None:
        body = {"model": "claude-x", "temperature": 0, "stream": True, **PROMPTS[1], "max_tokens": 400}
        with httpx.stream("POST", f"{speculating.url}/v1/messages", json=body, headers={"x-api-key": TOKEN},
                          timeout=600) as response:
            for count, _ in enumerate(response.iter_lines()):
                if count == 12:
                    started.set()
                if count == 40:
                    return  # leaving the block closes the connection: the client went away mid-reply

    leaving = threading.Thread(target=leave_early)
    leaving.start()
    started.wait(120)
    assert replies_of(ask(speculating, **PROMPTS[0])) == expected
    leaving.join(120)
    from support.waiting import wait_for

    wait_for(lambda: not speculating.worker.batcher.active, what="the cancelled stream to leave the batch")
