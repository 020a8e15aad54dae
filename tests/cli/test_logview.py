"""`mlxclaude logs`: parsing, filters, following, and the coloured rendering."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone

import pytest
from rich.console import Console

from mlxclaude import paths
from mlxclaude.cli import _logview as logview
from mlxclaude.cli._logrows import LineRenderer
from mlxclaude.cli._logview import Entry, LogFilter, follow_entries, parse_lines, parse_since, read_entries
from mlxclaude.cli.logs import NO_LOGS
from mlxclaude.errors import UsageError
from support.cli_app import run_cli

GREEN, RED = "\x1b[32m", "\x1b[31m"


def record(event: str, age: float, **fields) -> dict:
    """A log record written `age` seconds ago."""
    return {"ts": round(time.time() - age, 3), "level": fields.pop("level", "info"), "kind": fields.pop("kind", "request"),
            "event": event, **fields}


def finish(age: float, cache: str, **fields) -> dict:
    values = dict(request_id="req_0123456789abcdef01234567", session="5f1d2c3b-1111-2222-3333-444455556666",
                  request_kind="main", prompt_tokens=12034, cached_tokens=12000, new_tokens=34, output_tokens=210,
                  ttft_s=0.412, prefill_tps=845.3, decode_tps=42.1, peak_memory_gb=9.87, cache=cache,
                  stop_reason="tool_use")
    values.update(fields)
    return record("request_finish", age, kind="perf", **values)


def make_records() -> list[dict]:
    return [
        record("daemon_start", 7200, kind="daemon", pid=123),
        record("request_start", 600, request_id="req_aa", session="s1", request_kind="main", prompt_tokens=500),
        finish(590, "miss: no entry", request_id="req_aa"),
        record("request_start", 120, request_id="req_bb", session="s1", request_kind="main", prompt_tokens=520),
        finish(110, "hit", request_id="req_bb"),
        record("cache_evict", 100, kind="cache", bytes=1024, level="warning"),
        record("request_error", 30, level="error", request_id="req_cc", error="generation failed: boom"),
        finish(10, "partial: diverged at token 31", request_id="req_dd", cached_tokens=31),
    ]


RECORD_COUNT = len(make_records())


def write_log(tmp_path, monkeypatch, records):
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "home"))
    path = paths.daemon_log_file()
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def log_file(tmp_path, monkeypatch):
    return write_log(tmp_path, monkeypatch, make_records())


def events(entries) -> list[str]:
    return [entry.record["event"] for entry in entries]


# --- parsing and filters ---------------------------------------------------------------------------


def test_parse_since_durations_and_iso_times():
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("1h30m", now=10_000.0) == 10_000.0 - 5400
    assert parse_since("2d", now=200_000.0) == 200_000.0 - 172_800
    assert parse_since("2026-08-22T10:00:00Z") == datetime(2026, 8, 22, 10, tzinfo=timezone.utc).timestamp()
    assert parse_since("2026-08-22") == datetime(2026, 8, 22).timestamp()
    for bad in ("soon", "10", "m10", ""):
        with pytest.raises(UsageError):
            parse_since(bad)


def test_filters_by_since_level_and_kind(log_file):
    everything, _ = read_entries(log_file)
    assert len(everything) == RECORD_COUNT
    recent, _ = read_entries(log_file, LogFilter(since=parse_since("1m")))
    assert events(recent) == ["request_error", "request_finish"]
    last_hour, _ = read_entries(log_file, LogFilter(since=parse_since("1h")))
    assert len(last_hour) == RECORD_COUNT - 1
    warnings, _ = read_entries(log_file, LogFilter(level=logview.normalise_level("warn")))
    assert events(warnings) == ["cache_evict", "request_error"]
    perf, _ = read_entries(log_file, LogFilter(kinds=frozenset({"perf"})))
    assert [e.record["cache"] for e in perf] == ["miss: no entry", "hit", "partial: diverged at token 31"]
    both, _ = read_entries(log_file, LogFilter(since=parse_since("5m"), kinds=frozenset({"perf", "cache"})))
    assert events(both) == ["request_finish", "cache_evict", "request_finish"]
    with pytest.raises(UsageError):
        logview.normalise_level("loud")
    assert logview.normalise_kinds([" Perf", "cache"]) == {"perf", "cache"}
    with pytest.raises(UsageError):
        logview.normalise_kinds(["perfs"])


def test_last_n_and_the_offset_skip_a_half_written_line(log_file):
    with open(log_file, "a") as out:
        out.write('{"ts": 1, "event": "half')
    entries, offset = read_entries(log_file, last=2)
    assert events(entries) == ["request_error", "request_finish"]
    assert offset == log_file.read_bytes().rfind(b"\n") + 1


def test_text_lines_become_raw_entries_with_the_previous_time():
    lines = [json.dumps(record("model_loading", 5)), "Traceback (most recent call last):",
             '  File "x.py", line 1, in <module>', "RuntimeError: boom", "", "plain note"]
    entries = list(parse_lines(lines))
    assert [e.record["level"] for e in entries] == ["info", "error", "error", "error", "info"]
    assert all(e.ts == entries[0].ts for e in entries)
    assert not entries[1].is_json and entries[1].record["message"].startswith("Traceback")
    assert LogFilter(kinds=frozenset({"perf"})).matches(entries[1]) is False


def test_follow_yields_appended_lines_and_survives_truncation(log_file):
    _, offset = read_entries(log_file)
    half = json.dumps(record("request_start", 1, request_id="req_partial")) + "\n"
    script = [
        lambda: append(log_file, json.dumps(finish(1, "hit", request_id="req_new1")) + "\n"),
        lambda: append(log_file, half[:20]),
        lambda: append(log_file, half[20:]),
        lambda: log_file.write_text(json.dumps(record("daemon_start", 0, kind="daemon")) + "\n"),
    ]
    calls = []

    def fake_sleep(_):
        if script:
            script.pop(0)()
        calls.append(1)

    got = []
    for entry in follow_entries(log_file, LogFilter(), offset=offset, poll=0, sleep=fake_sleep,
                                stop=lambda: len(calls) > 8):
        got.append(entry)
    assert events(got) == ["request_finish", "request_start", "daemon_start"]
    assert got[0].record["request_id"] == "req_new1"
    assert got[1].record["request_id"] == "req_partial"


def append(path, text: str) -> None:
    with open(path, "a") as out:
        out.write(text)


# --- rendering -------------------------------------------------------------------------------------


def render(records) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=220,
                      soft_wrap=True)
    renderer = LineRenderer()
    console.print(renderer.header())
    for line in renderer.render_all(Entry(r, json.dumps(r)) for r in records):
        console.print(line)
    return console.file.getvalue()


def test_rendering_has_the_perf_columns_and_colours():
    out = render([*make_records(), finish(1, "hit")])
    for column in ("prompt", "cached", "new", "ttft", "prefill tok/s", "decode tok/s", "cache"):
        assert column in out
    assert "845.3" in out and "42.1" in out and "0.41s" in out and "12034" in out
    assert f"{GREEN}hit" in out
    assert f"{RED}miss: no entry" in out
    assert "partial: diverged at token 31" in out
    assert f"{RED}generation failed: boom" in out or "\x1b[1;31m" in out
    assert "01234567" in out and "req_0123" not in out  # the short request id
    assert "5f1d2c3b" in out and "5f1d2c3b-1111" not in out  # the short session


def test_rendered_columns_line_up():
    out = render([finish(5, "hit"), finish(4, "miss: no entry", prompt_tokens=5, ttft_s=12.5)])
    lines = [line for line in _strip(out).splitlines() if line and not line.startswith("--")]
    header, first, second = lines
    position = header.index("decode tok/s") + len("decode tok/s")
    assert first[position - 4:position] == "42.1" and second[position - 4:position] == "42.1"


def test_dated_rule_when_the_day_changes():
    day = datetime(2026, 1, 2, 12, 0).timestamp()
    out = _strip(render([{"ts": day, "event": "a"}, {"ts": day + 60, "event": "b"},
                         {"ts": day + 86400, "event": "c"}]))
    assert out.count("-- 2026-01-02 --") == 1 and out.count("-- 2026-01-03 --") == 1


def _strip(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture
def cli():
    return lambda *args: run_cli(*args, env={"COLUMNS": "200"})


def test_missing_log_file_is_one_line_and_exit_1(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "empty"))
    result = cli("logs")
    assert result.code == 1
    assert result.err == NO_LOGS + "\n" and result.out == ""


def test_json_passes_the_raw_lines_through(cli, log_file):
    with open(log_file, "a") as out:
        out.write("not json\n")
    result = cli("logs", "--json", "--kind", "perf", "-n", "2")
    assert result.code == 0
    lines = log_file.read_text().splitlines()
    assert result.out.splitlines() == [lines[4], lines[7]]


def test_table_output_filters(cli, log_file):
    result = cli("logs", "--level", "error")
    assert result.code == 0
    body = [line for line in result.out.splitlines()[1:] if not line.startswith("--")]
    assert len(body) == 1 and "generation failed: boom" in body[0]
    assert "prefill tok/s" in result.out.splitlines()[0]
    result = cli("logs", "--since", "yesterday-ish")
    assert result.code == 2 and result.err.startswith("error: ") and "yesterday-ish" in result.err


# --- fitting the terminal --------------------------------------------------------------------------


def progress(age: float, **fields) -> dict:
    values = dict(request_id="req_0123456789abcdef01234567", session="5f1d2c3b-1111-2222-3333-444455556666",
                  request_kind="main", prompt_tokens=19204, cached_tokens=1024, prefill_done=8100,
                  prefill_total=18180, percent=44.6, prefill_tps=380.2, elapsed_s=21.3, eta_s=26.5)
    values.update(fields)
    return record("prefill_progress", age, **values)


def slow_records() -> list[dict]:
    return [
        record("request_start", 300, request_id="req_0123456789abcdef01234567", session="5f1d2c3b-1111",
               request_kind="main", prompt_tokens=19204, max_tokens=32000, tools=17),
        progress(290),
        finish(10, "miss", prompt_tokens=123456, cached_tokens=0, new_tokens=123456, ttft_s=1234.567,
               prefill_tps=12345.6, decode_tps=7.25, miss_reason="no entry"),
        record("request_error", 5, level="error", request_id="req_cc",
               error="generation failed: " + "a long explanation " * 8),
    ]


@pytest.fixture
def slow_log(tmp_path, monkeypatch):
    return write_log(tmp_path, monkeypatch, slow_records())


@pytest.mark.parametrize("columns", [80, 100, 120, 200])
def test_logs_fit_the_terminal_and_never_cut_a_number(slow_log, columns):
    result = run_cli("logs", env={"COLUMNS": str(columns)})
    assert result.code == 0
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = " ".join(lines)
    for number in ("19204", "123456", "1235s", "12346", "7.2", "44.6% of 18180 new", "~26.5s left", "380.2"):
        assert number in text, number
    assert "…" not in result.out
    body = [line for line in lines[1:] if not line.startswith("--")]
    if columns == 200:  # every column, one line per record (the error's long message wraps)
        assert "prefill tok/s" in lines[0] and "session" in lines[0] and "level" in lines[0]
        assert len(body) == len(slow_records()) + 1
        assert body[1].split()[2] == "prefill_progress"
    else:  # shorter headers and event names
        assert "pf t/s" in lines[0] and "prefill_progress" not in text
        assert any(line.split()[1:3] in (["prefill", "01234567"], ["INFO", "prefill"]) for line in body)
    if columns == 80:  # the columns that went are in the detail, named
        assert "session" not in lines[0] and "cached" not in lines[0]
        assert "session=5f1d2c3b" in text and "new=123456" in text
        assert all(line.startswith(" " * 9) for line in body if not line[:2].isdigit())


def test_a_ttft_past_100_seconds_is_whole_and_the_columns_after_it_still_line_up():
    out = _strip(render([finish(5, "hit"), finish(4, "miss", ttft_s=123.45), finish(3, "hit", ttft_s=4321.0)]))
    lines = [line for line in out.splitlines() if line and not line.startswith("--")]
    header, *rows = lines
    assert "123.5s" in rows[1] and "4321s" in rows[2]
    position = header.index("decode tok/s") + len("decode tok/s")
    assert all(row[position - 4:position] == "42.1" for row in rows)


def test_piped_logs_show_every_column_one_line_each(slow_log, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    result = run_cli("logs")
    assert result.code == 0 and "prefill tok/s" in result.out.splitlines()[0]
    body = [line for line in result.out.splitlines()[1:] if not line.startswith("--")]
    assert len(body) == len(slow_records())


def test_logs_follow_renders_prefill_progress_as_it_is_written(slow_log):
    import os
    import threading

    from support.cli_app import start_process
    from support.waiting import wait_for

    proc = start_process("logs", "-f", "-n", "1", env={**os.environ, "COLUMNS": "80"})
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("pf t/s" in line for line in seen), timeout=30, what="the header")
        wait_for(lambda: any("a long explanation" in line for line in seen), timeout=30, what="the last line")
        append(slow_log, json.dumps(progress(0, percent=61.5, prefill_done=11180, eta_s=3.0)) + "\n")
        wait_for(lambda: any("~3.00s left" in line for line in seen), timeout=30, what="the appended line")
        text = "".join(seen)
        assert "61.5% of 18180 new" in text and " prefill " in text
    finally:
        proc.terminate()
        proc.wait(10)


# --- backends: the backend of each request, fallbacks, loads and unloads ----------------------------


SMALL = "mlx-community/Qwen3-4B-Instruct-2507-4bit"


def routed_records() -> list[dict]:
    request = dict(request_id="req_0123456789abcdef01234567", session="5f1d2c3b-1111", request_kind="main")
    return [
        record("backend_loaded", 60, kind="daemon", backend="small", model=SMALL),
        record("request_start", 50, prompt_tokens=19204, backend="gpu", route="*opus*", **request),
        record("backend_fallback", 49, level="warning", request_id=request["request_id"], backend="gpu",
               next="local", error="connection refused"),
        finish(10, "hit", prompt_tokens=123456, backend="local", route="*opus*"),
        record("backend_unloaded", 5, kind="daemon", backend="small", model=SMALL),
    ]


@pytest.fixture
def routed_log(tmp_path, monkeypatch):
    return write_log(tmp_path, monkeypatch, routed_records())


@pytest.mark.parametrize("columns", [80, 100, 120, 200, None])
def test_logs_show_each_requests_backend_and_the_fallbacks(routed_log, monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
        result = run_cli("logs")
    else:
        result = run_cli("logs", env={"COLUMNS": str(columns)})
    assert result.code == 0
    lines = result.out.splitlines()
    if columns is not None:
        assert max(len(line) for line in lines) <= columns
    text = " ".join(lines)
    assert "gpu failed (connection refused) → local" in text
    assert "small (mlx-community/Qwen3-4B-Instruct-2507-4bit)" in text and "123456" in text
    body = [line for line in lines[1:] if not line.startswith("--")]
    start = next(line for line in body if "19204" in line)
    if columns == 80:  # no room for the column: the backend is in the detail, named; the route is left out
        assert "backend" not in lines[0] and "backend=gpu" in text and "backend=local" in text
        assert "route=" not in text and " kind " in lines[0]
    else:  # a column of its own, lined up under its header
        position = lines[0].index("backend")
        assert start[position:position + 4] == "gpu "
        finished = next(line for line in body if line.rstrip().endswith("hit") or " hit " in line)
        assert finished[position:position + 6] == "local " and "backend=" not in text
    if columns in (None, 200, 120):
        assert "route=*opus*" in text
    if columns in (None, 200):
        assert any(line.split()[2] == "backend_fallback" for line in body)
        assert len(body) == len(routed_records())


def test_a_fallback_is_a_yellow_warning():
    out = render(routed_records())
    assert "\x1b[33mgpu" in out and "WARN" in out


def test_a_hostile_model_name_cannot_drive_the_terminal(cli, tmp_path, monkeypatch):
    """A request whose model carries ESC, BEL, CR, LF and a bidi override, served by the real server and
    logged to the daemon log, prints as visible escapes: no title set, no screen cleared, no forged line."""
    import httpx

    from mlxclaude import logs
    from support.live_server import live_server
    from support.scripted_backend import ScriptedBackend

    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "home"))
    hostile = "m\x1b]0;pwned\x07\x1b[2J\r\n{\"event\":\"forged\"}\u202eevil"
    logs.configure(paths.daemon_log_file(), echo=False)
    try:
        with live_server(lambda: ScriptedBackend(lambda chat: "ok")) as server:
            response = httpx.post(f"{server.url}/v1/messages", json={
                "model": hostile, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200
    finally:
        logs.configure(None)
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("logs")
    assert result.code == 0
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in result.out
    assert "\\x1b]0;pwned\\x07" in result.out and "\\u202eevil" in result.out
    assert not any(line.lstrip().startswith('{"event":"forged"') for line in result.out.splitlines())


def claude_code_turn(age: float, request_id: str, cached: int) -> list[dict]:
    """A request as the daemon logs it for Claude Code's main turn: every field it writes."""
    common = dict(request_id=request_id, session="4fe31e73-579c-4c1a-ab4b-6426d8a660fb", request_kind="main",
                  backend="local", route="*")
    return [
        record("request_start", age, **common, model="claude-opus-4-8", stream=True, tools=17, prompt_tokens=22890,
               max_tokens=32000, queued=0),
        record("request_finish", age - 10, kind="perf", **common, prompt_tokens=22890, cached_tokens=cached,
               new_tokens=22890 - cached, output_tokens=310, ttft_s=0.612, prefill_tps=1835.3, decode_tps=48.2,
               peak_memory_gb=5.104, cache="partial" if cached else "miss", stop_reason="end_turn", finish="stop",
               reused_tokens=cached, cache_entry="turn", diverged_at=cached, diverged_message=3, diverged_role="user",
               batch=1, queued_s=0.001),
    ]


def test_a_claude_code_turn_reads_in_three_lines_at_80_columns_and_whole_when_piped(tmp_path, monkeypatch):
    write_log(tmp_path, monkeypatch, [*claude_code_turn(60, "req_aaaaaaaa", 0), *claude_code_turn(30, "req_bbbbbbbb", 21921)])
    lines = [line for line in run_cli("logs", env={"COLUMNS": "80"}).out.splitlines()[1:] if not line.startswith("--")]
    assert len(lines) == 6 and max(len(line) for line in lines) <= 80, lines
    start, finished, detail = lines[3:]
    assert start.split()[1:4] == ["start", "bbbbbbbb", "main"] and "session=4fe31e73" in start
    assert "cached=21921" in detail and "stop=end_turn" in detail and "diverged=msg3/user" in detail
    for routine in ("tools=", "max_tokens=", "queued=", "batch=", "reused_tokens=", "finish="):
        assert routine not in " ".join(lines), routine
    assert [line.count("backend=local") + line.count("session=") for line in lines] == [2, 0, 0, 2, 0, 0]
    monkeypatch.delenv("COLUMNS", raising=False)
    piped = run_cli("logs").out
    for field in ("tools=17", "max_tokens=32000", "batch=1", "reused_tokens=21921", "diverged_message=3"):
        assert field in piped, field
