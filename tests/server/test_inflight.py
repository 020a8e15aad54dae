"""The requests in flight, without a model: the worker lists its jobs' tags, the status facts of each phase,
when `prefill_progress` is due, and the lines `mlxclaude status` makes of them."""

from __future__ import annotations

import asyncio
import json
import threading

from mlxclaude import logs
from mlxclaude.cli._inflight import in_flight_lines
from mlxclaude.engine.worker import Worker
from mlxclaude.server.inflight import InFlight, log_due_progress, status_facts


def record(request_id="req_a", kind="main", prompt=1000) -> InFlight:
    item = InFlight(request_id=request_id, kind=kind, session="sess-1234-5678", prompt_tokens=prompt, max_tokens=64)
    item.received -= 5
    return item


def test_each_phase_as_the_status_shows_it():
    queued, starting, prefill, decoding = record("req_q"), record("req_s"), record("req_p"), record("req_d")
    prefill.progress.begin_prefill(1000, 200)
    prefill.progress.prefilled(400)
    prefill.progress.prefill_started -= 2.0
    decoding.progress.begin_prefill(1000, 0)
    decoding.progress.prefill_started -= 4.0
    decoding.progress.begin_decode()
    decoding.progress.decode_started -= 1.0
    decoding.progress.generated_tokens = 30
    facts = status_facts(list([(prefill, True), (decoding, True), (starting, True), (queued, False)]))
    by_id = {entry["request_id"]: entry for entry in facts["in_flight"]}
    assert facts["queued"] == 1 and [e["request_id"] for e in facts["in_flight"]] == ["req_p", "req_d", "req_s", "req_q"]
    assert by_id["req_q"]["phase"] == "queued" and "percent" not in by_id["req_q"] and by_id["req_q"]["age_s"] >= 5
    assert by_id["req_s"]["phase"] == "starting"
    p = by_id["req_p"]
    assert (p["phase"], p["cached_tokens"], p["prefill_done"], p["prefill_total"], p["percent"]) == \
        ("prefill", 200, 400, 800, 50.0)
    assert 150 < p["prefill_tps"] <= 200 and 1.5 < p["eta_s"] < 2.5
    d = by_id["req_d"]
    assert d["phase"] == "decode" and d["percent"] == 100.0 and d["output_tokens"] == 30
    assert 20 < d["decode_tps"] <= 30 and "eta_s" not in d and "spec" not in d
    decoding.progress.drafted_tokens, decoding.progress.accepted_tokens, decoding.progress.decode_steps = 42, 30, 25
    assert status_facts([(decoding, True)])["in_flight"][0]["spec"] == "30/42 in 25 steps"


def test_prefill_progress_is_logged_once_per_interval_for_running_prefills_only(tmp_path):
    slow, fast, waiting = record("req_slow"), record("req_fast"), record("req_wait")
    slow.progress.begin_prefill(5000, 0)
    fast.progress.begin_prefill(100, 0)
    start = slow.progress.prefill_started
    fast.progress.prefill_started = start + 1.5  # began later
    held = [(slow, True), (fast, True), (waiting, False)]
    log_file = tmp_path / "log.jsonl"
    logs.configure(log_file, echo=False)
    try:
        assert log_due_progress(held, 2.0, now=start + 1.0) == 0  # nothing is two seconds old yet
        slow.progress.prefilled(1000)
        assert log_due_progress(held, 2.0, now=start + 2.0) == 1
        assert log_due_progress(held, 2.0, now=start + 3.0) == 0  # not again within the interval
        fast.progress.begin_decode()  # done before its two seconds: never logged
        slow.progress.prefilled(2000)
        assert log_due_progress(held, 2.0, now=start + 4.0) == 1
    finally:
        logs.configure(None)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == ["req_slow", "req_slow"]
    assert [(line["prefill_done"], line["percent"], line["elapsed_s"]) for line in lines] == \
        [(1000, 20.0, 2.0), (2000, 40.0, 4.0)]
    assert lines[0]["prefill_tps"] == 500.0 and lines[0]["eta_s"] == 8.0 and lines[0]["event"] == "prefill_progress"


def test_a_prefill_that_is_all_in_is_not_logged_as_progress(tmp_path):
    done = record("req_done")
    done.progress.begin_prefill(1000, 0)
    start = done.progress.prefill_started
    done.progress.prefilled(1000)  # the last chunk is in; decoding begins at the next engine step
    logs.configure(tmp_path / "log.jsonl", echo=False)
    try:
        assert log_due_progress(list([(done, True)]), 2.0, now=start + 5.0) == 0
    finally:
        logs.configure(None)


def test_a_prefill_a_token_short_of_the_end_is_not_shown_as_100_percent():
    from mlxclaude.server.inflight import prefill_figures

    almost = record("req_almost")
    almost.progress.begin_prefill(10_000, 0)
    almost.progress.prefilled(9_999)
    assert prefill_figures(almost.progress, almost.progress.prefill_started + 1)["percent"] == 99.9


def test_the_worker_lists_its_jobs_until_they_finish():
    from mlxclaude.engine.turn import start_turn
    from mlxclaude.protocol.chat import ChatRequest
    from support.scripted_backend import ScriptedBackend

    release = threading.Event()
    started = threading.Event()

    def script(chat):
        if chat.model == "first":
            started.set()
            release.wait(10)
        return "done"

    backend = ScriptedBackend(script)
    worker = Worker(lambda: backend, max_batch=1)
    worker.start()

    def submit(tag: str):
        chat = ChatRequest(model=tag, messages=[{"role": "user", "content": "hi"}])
        prompt = backend.render(chat)
        return start_turn(worker, chat, prompt, 16, backend.info, tag=tag)

    async def scenario():
        first, second, gone = submit("first"), submit("second"), submit("gone")
        await asyncio.to_thread(started.wait, 10)
        await gone.aclose()  # its client went away while it waited: not listed
        listed = worker.in_flight()
        release.set()
        results = [[type(item).__name__ async for item in job] for job in (first, second, gone)]
        return listed, results

    try:
        listed, results = asyncio.run(scenario())
    finally:
        worker.stop()
    assert listed == [("first", True), ("second", False)]
    assert results[0][-1] == results[1][-1] == "TurnEnd" and results[2] == [] and worker.in_flight() == []


def test_status_lines_fit_80_columns():
    entries = [
        {"request_kind": "main", "session": "5f1d2c3b-aaaa", "phase": "prefill", "age_s": 75.2, "prompt_tokens": 123456,
         "cached_tokens": 1024, "prefill_done": 8100, "prefill_total": 122432, "percent": 6.6, "prefill_tps": 5.2,
         "eta_s": 22000.0},
        {"request_kind": "title", "session": "5f1d2c3b-aaaa", "phase": "queued", "age_s": 3.2, "prompt_tokens": 310},
        {"request_kind": "side", "phase": "decode", "age_s": 3.2, "prompt_tokens": 310, "output_tokens": 85,
         "decode_tps": 31.24},
        {"request_kind": "main", "phase": "decode", "age_s": 9.0, "prompt_tokens": 31000, "output_tokens": 1234,
         "decode_tps": 131.5, "spec": "1000/1100 in 234 steps"},
    ]
    lines = in_flight_lines(entries)
    assert lines == [
        "main, 123,456 tok (1,024 cached), session 5f1d2c3b, 1m15s",
        "  prefill 7% of 122,432 at 5.2 tok/s, ~6h06m left",
        "title, 310 tok, session 5f1d2c3b, 3s, queued",
        "side, 310 tok, 3s",
        "  decoding: 85 out at 31.2 tok/s",
        "main, 31,000 tok, 9s",
        "  decoding: 1,234 out at 132 tok/s, spec 1000/1100 in 234 steps",
    ]
    assert all(len(line) <= 80 - len("in flight  ") for line in lines)
    assert in_flight_lines(None) == [] and in_flight_lines([]) == []


def test_a_remote_turn_reads_as_waiting_then_decoding_on_its_backend():
    remote = InFlight(request_id="req_r", kind="main", session=None, prompt_tokens=0, max_tokens=64,
                      backend="gpu", remote=True)
    waiting = status_facts([(remote, True)])["in_flight"][0]
    assert waiting["phase"] == "waiting" and waiting["prompt_tokens"] is None and waiting["backend"] == "gpu"
    assert in_flight_lines([waiting])[0].startswith("main, on gpu, ") and in_flight_lines([waiting])[0].endswith("waiting")
    remote.progress.begin_decode()
    remote.progress.generated_tokens = 3
    decoding = status_facts([(remote, True)])["in_flight"][0]
    assert decoding["phase"] == "decode" and decoding["output_tokens"] == 3 and "percent" not in decoding
    assert in_flight_lines([decoding])[1].startswith("  decoding: 3 out")
