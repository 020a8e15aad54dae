"""The requests every target holds, queued or running: what GET /mlxclaude/status shows of each, and the
`prefill_progress` log lines written every few seconds while a long prompt goes through a local model.

On a local model a record rides with its engine job as the job's tag (engine/worker.py lists them); the
engine moves its GenerationProgress on from the worker thread, and this module only reads it. A remote
target keeps its own records: `waiting` until the reply's first piece, then `decode`.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mlxclaude.engine.backend import GenerationProgress, speculation_text
from mlxclaude.engine.worker import Worker
from mlxclaude.logs import log_event

PROGRESS_INTERVAL_S = 2.0  # a prefill longer than this logs prefill_progress this often


@dataclass
class InFlight:
    request_id: str
    kind: str
    session: Optional[str]
    prompt_tokens: int
    max_tokens: int
    stream: bool = False
    backend: Optional[str] = None
    remote: bool = False
    progress: GenerationProgress = field(default_factory=GenerationProgress)
    received: float = field(default_factory=time.monotonic)
    last_logged: Optional[float] = None

    def phase(self, running: bool) -> str:
        """queued (waiting for the engine), starting (looking up the prompt cache), prefill, decode, done."""
        if not running:
            return "queued"
        if self.progress.phase == "queued":
            return "waiting" if self.remote else "starting"
        return self.progress.phase

    def facts(self, running: bool, now: Optional[float] = None) -> dict[str, Any]:
        """One entry of the status's `in_flight` list (field names as in the request log lines)."""
        now = time.monotonic() if now is None else now
        progress = self.progress
        phase = self.phase(running)
        facts: dict[str, Any] = {
            "request_id": self.request_id, "request_kind": self.kind, "session": self.session,
            "backend": self.backend, "stream": self.stream, "phase": phase, "age_s": round(now - self.received, 1),
            "prompt_tokens": None if self.remote else self.prompt_tokens, "max_tokens": self.max_tokens,
        }
        if phase in ("prefill", "decode", "done") and not self.remote:
            facts.update(prefill_figures(progress, now))
        if phase in ("decode", "done"):
            facts.update(output_tokens=progress.generated_tokens, decode_tps=round(progress.decode_tps(now), 1))
            spec = speculation_text(progress.accepted_tokens, progress.drafted_tokens, progress.decode_steps)
            if spec:
                facts["spec"] = spec
        return facts


def prefill_figures(progress: GenerationProgress, now: float) -> dict[str, Any]:
    total, done = progress.prefill_total, progress.prefill_done
    tps = progress.prefill_tps(now)
    started = progress.prefill_started if progress.prefill_started is not None else now
    end = progress.decode_started if progress.decode_started is not None else now
    figures: dict[str, Any] = {
        "cached_tokens": progress.cached_tokens, "prefill_done": done, "prefill_total": total,
        "percent": math.floor(1000 * done / total) / 10 if total else 100.0,  # 100.0 only once all is in
        "prefill_tps": round(tps, 1), "prefill_s": round(end - started, 1),
    }
    if progress.phase == "prefill" and tps > 0 and done < total:
        figures["eta_s"] = round((total - done) / tps, 1)
    return figures


def records(worker: Worker) -> list[tuple[InFlight, bool]]:
    return [(tag, running) for tag, running in worker.in_flight() if isinstance(tag, InFlight)]


Held = list[tuple[InFlight, bool]]


def status_facts(held: Held) -> dict[str, Any]:
    """`in_flight` (oldest first; several running at once once requests are batched) and how many wait."""
    now = time.monotonic()
    entries = [record.facts(running, now) for record, running in held]
    return {"in_flight": entries, "queued": sum(1 for entry in entries if entry["phase"] == "queued")}


def log_due_progress(held: Held, interval: float, now: Optional[float] = None) -> int:
    """Log `prefill_progress` for each running prefill that has gone on `interval` seconds since it began or
    was last logged; returns how many lines were written."""
    now = time.monotonic() if now is None else now
    written = 0
    for record, running in held:
        progress = record.progress
        if not running or progress.phase != "prefill" or progress.prefill_started is None:
            continue
        since = record.last_logged if record.last_logged is not None else progress.prefill_started
        if now - since < interval:
            continue
        figures = prefill_figures(progress, now)  # one reading: the engine thread moves it on meanwhile
        if figures["prefill_done"] >= figures["prefill_total"]:
            continue  # all in: decoding starts at the next step, nothing left to report
        record.last_logged = now
        log_event("prefill_progress", request_id=record.request_id, session=record.session,
                  request_kind=record.kind, prompt_tokens=record.prompt_tokens,
                  cached_tokens=figures.pop("cached_tokens"), elapsed_s=figures.pop("prefill_s"), **figures)
        written += 1
    return written


async def log_prefill_progress(held: Callable[[], Held], interval: Callable[[], float]) -> None:
    """Runs for the server's life: checks a few times per interval (`interval()` is read each time, so a test
    can lower it on a running server)."""
    while True:
        seconds = float(interval())
        await asyncio.sleep(min(0.5, seconds / 4))
        log_due_progress(held(), seconds)
