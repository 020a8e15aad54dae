"""MlxBackend with the prompt cache, on the tiny real model: stats, usage on the wire, logs, facts."""

from __future__ import annotations

import json
import threading

import anthropic
import pytest

from mlxclaude import logs
from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.mlx_backend import MlxBackend
from mlxclaude.protocol.chat import ChatRequest, Sampling
from support.live_server import live_server

pytestmark = pytest.mark.mlx
TOKEN = "cache-token"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
SYSTEM = "You are a careful coding agent working in a small repository."


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=256 * 1024**2)


def generate(backend, messages, *, session="s", kind="main", max_tokens=4) -> GenerationStats:
    chat = ChatRequest(model="m", messages=[{"role": "system", "content": SYSTEM}, *messages], session_id=session,
                       kind=kind, max_tokens=max_tokens, sampling=Sampling(temperature=0.0),
                       tools=[{"type": "function", "function": {"name": "Bash", "description": "Run",
                                                                "parameters": BASH["input_schema"]}}])
    items = list(backend.generate(backend.render(chat), chat, max_tokens, threading.Event()))
    assert isinstance(items[-1], GenerationStats)
    return items[-1]


def test_generate_reports_reuse_and_the_facts_add_up(backend):
    backend.prompt_cache.clear()
    first = generate(backend, [{"role": "user", "content": "what is here?"}], session="engine-a")
    assert first.cached_tokens == 0 and first.cache_note == "miss" and first.extra["miss_reason"] == "no entry"
    second = generate(backend, [{"role": "user", "content": "what is here?"},
                                {"role": "assistant", "content": "Let me look."},
                                {"role": "user", "content": "go on"}], session="engine-a")
    assert second.cache_note == "hit" and second.cached_tokens == first.prompt_tokens
    assert second.extra == {"reused_tokens": first.prompt_tokens, "cache_entry": "turn"}
    facts = backend.cache_facts()
    assert facts["entries"] == 2 and facts["tiers"]["system"]["entries"] == 1
    assert facts["sessions"]["engine-a"]["requests"] == 2 and facts["sessions"]["engine-a"]["hits"] == 1
    assert 0 < facts["bytes"] <= facts["max_bytes"] == 256 * 1024**2
    json.dumps(facts)  # the status endpoint serialises it as is


def test_same_request_twice_reuses_all_but_the_last_token(backend):
    backend.prompt_cache.clear()
    messages = [{"role": "user", "content": "again"}]
    first = generate(backend, messages, session="engine-b")
    second = generate(backend, messages, session="engine-b")
    assert second.cached_tokens == first.prompt_tokens - 1 and second.cache_note == "hit"


def test_usage_and_logs_through_the_server(tiny_model_dir, tmp_path):
    log_file = tmp_path / "server.jsonl"
    logs.configure(log_file, echo=False)
    try:
        with live_server(lambda: MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28),
                         auth_token=TOKEN) as server:
            client = anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0,
                                         default_headers={"x-claude-code-session-id": "wire-session"})
            turn = dict(model="claude-opus-4-8", max_tokens=4, system=SYSTEM, tools=[BASH],
                        messages=[{"role": "user", "content": "list the files"}], extra_body={"temperature": 0.0})
            first = client.messages.create(**turn)
            grown = [*turn["messages"], {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "now"}]
            counted = client.messages.count_tokens(model="claude-opus-4-8", system=SYSTEM, tools=[BASH], messages=grown)
            second = client.messages.create(**{**turn, "messages": grown})
    finally:
        logs.configure(None)
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.input_tokens
    assert second.usage.input_tokens + second.usage.cache_read_input_tokens == counted.input_tokens
    finishes = [json.loads(line) for line in log_file.read_text().splitlines() if '"request_finish"' in line]
    assert [record["cache"] for record in finishes] == ["miss", "hit"]
    assert finishes[0]["miss_reason"] == "no entry" and finishes[1]["reused_tokens"] == first.usage.input_tokens
    assert finishes[1]["cache_entry"] == "turn" and finishes[1]["session"] == "wire-session"


def test_a_zero_byte_cap_disables_reuse(tiny_model_dir):
    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=0)
    messages = [{"role": "user", "content": "hello"}]
    generate(backend, messages)
    assert generate(backend, messages).cached_tokens == 0
    assert backend.cache_facts()["entries"] == 0
