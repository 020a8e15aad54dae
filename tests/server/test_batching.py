"""Concurrent requests served together (engine/batching.py) on the real MLX engine with the tiny model.

Two servers on the same model with end-of-reply disabled (so every greedy reply runs to max_tokens and streams
overlap for as long as the test wants): one that batches (max_batch 3) and one that runs requests one at a
time through mlx-lm's generate_step (max_batch 1, the engine before batching). A third, with the model's
own EOS, serves the constrained requests.
"""

from __future__ import annotations

import json
import threading
import time

import anthropic
import httpx
import jsonschema
import pytest

from mlxclaude import logs
from mlxclaude.engine.mlx_backend import MlxBackend
from support.live_server import live_server
from support.waiting import wait_for

pytestmark = pytest.mark.mlx
TOKEN = "batch-token"
NEVER = 1  # <|im_start|>: the tiny model's greedy replies never produce it, so nothing ends a reply early
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
ASKS = ["Write a short greeting.", "def foo(x):", "The quick brown fox jumps over the lazy dog, then " * 12,
        "import os", "Explain recursion in simple words, with an example.", "class A:"]


def backend_without_eos(model_dir):
    def load():
        backend = MlxBackend(str(model_dir), context_limit=4096, cache_max_bytes=1 << 28)
        backend.tokenizer.eos_token_ids = [NEVER]
        return backend

    return load


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch-logs") / "server.jsonl"
    logs.configure(path, echo=False)
    yield path
    logs.configure(None)


@pytest.fixture(scope="module")
def batched(tiny_model_dir, log_file):
    with live_server(backend_without_eos(tiny_model_dir), auth_token=TOKEN, max_batch=3) as server:
        yield server


@pytest.fixture(scope="module")
def alone(tiny_model_dir, log_file):
    with live_server(backend_without_eos(tiny_model_dir), auth_token=TOKEN, max_batch=1) as server:
        yield server


def client_of(server, session: str | None = None) -> anthropic.Anthropic:
    headers = {"x-claude-code-session-id": session} if session else None
    return anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0, default_headers=headers)


def params(content: str, max_tokens: int, **extra) -> dict:
    return dict(model="claude-opus-4-8", max_tokens=max_tokens, messages=[{"role": "user", "content": content}],
                extra_body={"temperature": 0.0}, **extra)


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


class Streamed:
    """One streaming request on its own thread: its text, when its first and last text arrived."""

    def __init__(self, server, content: str, max_tokens: int, **extra) -> None:
        self.server, self.content, self.max_tokens, self.extra = server, content, max_tokens, extra
        self.text, self.first, self.last, self.message, self.error = "", None, None, None, None
        self.deltas = 0
        self.leave = threading.Event()  # set: the client goes away at its next event
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Streamed":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            with client_of(self.server).messages.stream(**params(self.content, self.max_tokens, **self.extra)) as stream:
                for event in stream:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        self.first = self.first or time.perf_counter()
                        self.last = time.perf_counter()
                        self.text += event.delta.text
                        self.deltas += 1
                    if self.leave.is_set():
                        return  # leaving the block closes the connection: the client went away
                self.message = stream.get_final_message()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def join(self, timeout: float = 120) -> "Streamed":
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not finish"
        assert self.error is None, self.error
        return self


def status(server) -> dict:
    return httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}, timeout=10).json()


def finishes(log_file) -> list[dict]:
    return [json.loads(line) for line in log_file.read_text().splitlines() if '"request_finish"' in line]


@pytest.fixture(scope="module")
def solo(alone) -> dict[tuple[str, int], str]:
    """Each ask's greedy reply from the one-at-a-time engine."""
    client = client_of(alone)
    replies = {}
    for content, max_tokens in [*zip(ASKS, (64, 40, 80, 24, 64, 50)), (ASKS[0], 160), (ASKS[4], 160)]:
        replies[(content, max_tokens)] = text_of(client.messages.create(**params(content, max_tokens)))
    return replies


def test_concurrent_greedy_replies_are_the_replies_alone(batched, solo, log_file):
    batched.worker.batcher.largest_batch = 0
    wanted = [key for key in solo if key[1] < 100]
    barrier = threading.Barrier(len(wanted))
    replies: dict[tuple[str, int], str] = {}

    def ask(key):
        barrier.wait()
        replies[key] = text_of(client_of(batched).messages.create(**params(*key)))

    threads = [threading.Thread(target=ask, args=(key,)) for key in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert batched.worker.batcher.largest_batch == 3  # six requests, three at a time
    for key in wanted:
        assert replies[key] == solo[key], key
    sizes = [record["batch"] for record in finishes(log_file) if "batch" in record]
    assert max(sizes) >= 2


def test_a_request_arriving_mid_stream_joins_without_disturbing_the_others(batched, solo):
    first = Streamed(batched, ASKS[0], 160).start()
    wait_for(lambda: first.deltas >= 20, what="the first stream to be decoding")
    joined = Streamed(batched, ASKS[4], 160).start()
    first.join(), joined.join()
    assert joined.first < first.last, "the second request waited for the first to finish"
    assert first.text == solo[(ASKS[0], 160)]
    assert joined.text == solo[(ASKS[4], 160)]
    assert first.message.stop_reason == joined.message.stop_reason == "max_tokens"
    assert first.message.usage.output_tokens == joined.message.usage.output_tokens == 160


def queued_kinds(server) -> list[str]:
    return [item["request_kind"] for item in status(server)["in_flight"] if item["phase"] == "queued"]


def test_cancelling_one_stream_frees_its_slot_and_the_others_finish(batched, solo):
    long = [Streamed(batched, ASKS[0], 160), Streamed(batched, ASKS[4], 160), Streamed(batched, ASKS[1], 4000)]
    for stream in long:
        stream.start()
    wait_for(lambda: all(stream.deltas >= 1 for stream in long), what="three streams decoding")
    waiting = Streamed(batched, ASKS[3], 24).start()  # the batch (3) is full: it waits for a slot
    wait_for(lambda: queued_kinds(batched) == ["side"], what="the fourth request to be queued")
    shown = status(batched)
    assert shown["batch"]["mode"] == "batched" and shown["batch"]["max_batch"] == 3 and shown["batch"]["active"] == 3
    assert shown["queued"] == 1
    engine_thread = shown["batch"]["engine_thread"]  # this process's (the server runs in it), not the test's own
    assert engine_thread in {thread.native_id for thread in threading.enumerate()} - {threading.get_native_id()}
    decoding = [item for item in shown["in_flight"] if item["phase"] == "decode"]
    assert len(decoding) == 3 and all(item["decode_tps"] > 0 and item["output_tokens"] > 0 for item in decoding)
    long[2].leave.set()  # its client goes away: its slot goes to the waiting request
    waiting.join()
    assert waiting.first < min(long[0].last, long[1].last), "the waiting request waited for a stream to end"
    assert waiting.message.stop_reason == "max_tokens" and waiting.text == solo[(ASKS[3], 24)]
    for stream, key in zip(long[:2], [(ASKS[0], 160), (ASKS[4], 160)]):
        assert stream.join().text == solo[key]
    long[2].join()
    assert long[2].message is None and long[2].deltas < 4000
    wait_for(lambda: status(batched)["batch"]["active"] == 0, what="the batch to empty")
    assert status(batched)["in_flight"] == []


def test_the_main_turn_is_admitted_before_earlier_side_requests(batched):
    fill = [Streamed(batched, ASKS[index], 4000) for index in (0, 1, 4)]
    for stream in fill:
        stream.start()
    wait_for(lambda: all(stream.deltas >= 1 for stream in fill), what="a full batch")
    side = Streamed(batched, ASKS[3], 8).start()
    wait_for(lambda: queued_kinds(batched) == ["side"], what="the side request to queue")
    main = Streamed(batched, ASKS[5], 8, tools=[BASH], tool_choice={"type": "none"}).start()
    wait_for(lambda: sorted(queued_kinds(batched)) == ["main", "side"], what="the main turn to queue")
    fill[0].leave.set()  # one slot: the main turn takes it, though it came last
    main.join()
    assert side.first is None or side.first > main.first
    for stream in fill:
        stream.leave.set()
        stream.join()
    side.join()
    assert side.first > main.first


def test_a_cache_hit_in_a_batch_prefills_only_the_new_tokens(batched):
    client = client_of(batched, session="batch-session")
    turn = dict(model="claude-opus-4-8", max_tokens=8, system="You are a careful coding agent.",
                messages=[{"role": "user", "content": "list the files"}], extra_body={"temperature": 0.0})
    first = client.messages.create(**turn)
    other = Streamed(batched, ASKS[2], 160).start()  # decoding alongside: it prefills nothing meanwhile
    wait_for(lambda: other.deltas >= 5, what="a stream decoding")
    before = status(batched)["batch"]["prefilled_tokens"]
    grown = [*turn["messages"], {"role": "assistant", "content": "Sure."},
             {"role": "user", "content": "now the tests"}]
    second = client.messages.create(**{**turn, "messages": grown})
    prefilled = status(batched)["batch"]["prefilled_tokens"] - before
    other.join()
    assert second.usage.cache_read_input_tokens == first.usage.input_tokens + first.usage.cache_read_input_tokens
    assert prefilled == second.usage.input_tokens  # the new tokens only, cached ones never again


@pytest.fixture(scope="module")
def constrained(tiny_model_dir):
    with live_server(lambda: MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 28),
                     auth_token=TOKEN, max_batch=4) as server:
        yield server


def test_a_forced_tool_call_and_a_json_reply_batched_with_free_text_are_all_valid(constrained):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    client = client_of(constrained)
    sampled = {"temperature": 1.0}
    requests = {
        "tool": dict(model="claude-opus-4-8", max_tokens=96, tools=[BASH], tool_choice={"type": "tool", "name": "Bash"},
                     messages=[{"role": "user", "content": "Do the task."}], extra_body=sampled),
        "json": dict(model="claude-haiku-4-5", max_tokens=48, messages=[{"role": "user", "content": "Name this."}],
                     extra_body={**sampled, "output_config": {"format": {"type": "json_schema", "schema": schema}}}),
        "text": dict(model="claude-opus-4-8", max_tokens=64, messages=[{"role": "user", "content": "Say hello."}],
                     extra_body=sampled),
    }
    for _ in range(2):
        constrained.worker.batcher.largest_batch = 0
        barrier = threading.Barrier(len(requests))
        replies = {}

        def ask(name):
            barrier.wait()
            replies[name] = client.messages.create(**requests[name])

        threads = [threading.Thread(target=ask, args=(name,)) for name in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert constrained.worker.batcher.largest_batch >= 2
        call = replies["tool"]
        assert call.stop_reason == "tool_use" and [block.type for block in call.content] == ["tool_use"]
        jsonschema.validate(call.content[0].input, BASH["input_schema"])
        jsonschema.validate(json.loads(text_of(replies["json"])), schema)
        assert all(block.type == "text" for block in replies["text"].content)


class SlowPrefill:
    """The model, with every prefill chunk (more than one token at once) taking 30 ms longer."""

    def __init__(self, model) -> None:
        self._model = model

    def __call__(self, inputs, *args, **kwargs):
        if inputs.shape[-1] > 1:
            time.sleep(0.03)
        return self._model(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def test_batched_streams_show_their_own_progress_and_log_it(tiny_model_dir, tmp_path):
    """A long prefill and a request that joins it: both are in flight and running at once (nothing queued),
    each with its own phase, and the long one's prefill_progress lines go on while they share the batch."""
    def load():
        backend = MlxBackend(str(tiny_model_dir), context_limit=8192, cache_max_bytes=1 << 28, prefill_step_size=64)
        backend.model = SlowPrefill(backend.model)
        return backend

    log_file = tmp_path / "server.jsonl"
    logs.configure(log_file, echo=False)
    try:
        with live_server(load, auth_token=TOKEN) as server:
            server.app.state.mlxclaude.progress_interval = 0.2
            long = Streamed(server, "\n".join(f"line {i}: the build failed at step {i}" for i in range(300)), 4,
                            tools=[BASH], tool_choice={"type": "none"})
            long.start()
            wait_for(lambda: any(item["phase"] == "prefill" and item["percent"] > 0
                                 for item in status(server)["in_flight"]), what="the long prefill")
            side = Streamed(server, "Write a short greeting.", 24).start()

            def both_running():
                shown = status(server)
                phases = {item["request_kind"]: item["phase"] for item in shown["in_flight"]}
                return shown if phases.get("main") == "prefill" and phases.get("side") in ("prefill", "decode") else None

            shown = wait_for(both_running, what="both streams running")
            assert shown["queued"] == 0 and shown["busy"] is True
            side.join()
            assert long.first is None or side.first < long.first  # the short one did not wait for the long one
            long.join()
    finally:
        logs.configure(None)
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    progress = [record for record in records if record["event"] == "prefill_progress"
                and record["request_kind"] == "main"]
    assert len(progress) >= 2
    done = [record["prefill_done"] for record in progress]
    assert done == sorted(done) and all(0 < record["percent"] < 100 for record in progress), \
        [(r["percent"], r["prefill_done"], r["prefill_total"], r["request_id"][-4:]) for r in progress]
