"""`mlxclaude status`'s lines for the requests in flight (the status's `in_flight` list, server/inflight.py).

Short enough for 80 columns: a line with the kind, prompt tokens, session and age, and one with what it is
doing (prefill with percent, tok/s and time left; decoding with tokens so far and tok/s) or `queued`.
"""

from __future__ import annotations

from typing import Any, Optional


def in_flight_lines(entries: Optional[list[dict[str, Any]]]) -> list[str]:
    """Per request: `main, 19,204 tok (1,024 cached), session 5f1d2c3b, 12s`, then (once the engine has it)
    `  prefill 42% of 18,180 at 380 tok/s, ~29s left` or `  decoding: 85 out at 31.2 tok/s`."""
    lines: list[str] = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        head, phase = in_flight_line(entry), phase_text(entry)
        if phase in ("queued", "starting", "waiting", ""):
            lines.append(f"{head}, {phase}" if phase else head)
        else:
            lines.extend([head, f"  {phase}"])
    return lines


def in_flight_line(entry: dict[str, Any]) -> str:
    kind = str(entry.get("request_kind") or "?")
    cached = entry.get("cached_tokens")
    if entry.get("prompt_tokens") is None and entry.get("backend"):  # a remote backend's: its count comes at the end
        parts = [kind, f"on {entry['backend']}"]
    else:
        parts = [kind, f"{_count(entry.get('prompt_tokens'))} tok"
                 + (f" ({_count(cached)} cached)" if isinstance(cached, int) and cached else "")]
    session = entry.get("session")
    if session:
        parts.append(f"session {str(session)[:8]}")
    age = entry.get("age_s")
    if isinstance(age, (int, float)):
        parts.append(duration(age))
    return ", ".join(parts)


def phase_text(entry: dict[str, Any]) -> str:
    phase = str(entry.get("phase") or "")
    if phase == "prefill":
        text = f"prefill {_percent(entry.get('percent'))} of {_count(entry.get('prefill_total'))}"
        tps = entry.get("prefill_tps")
        if isinstance(tps, (int, float)) and tps > 0:
            text += f" at {_rate(tps)} tok/s"
        eta = entry.get("eta_s")
        if isinstance(eta, (int, float)):
            text += f", ~{duration(eta)} left"
        return text
    if phase in ("decode", "done"):
        text = f"decoding: {_count(entry.get('output_tokens'))} out"
        tps = entry.get("decode_tps")
        if isinstance(tps, (int, float)) and tps > 0:
            text += f" at {_rate(tps)} tok/s"
        if entry.get("spec"):
            text += f", spec {entry['spec']}"
        return text
    return phase


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _percent(value: Any) -> str:
    return f"{value:.0f}%" if isinstance(value, (int, float)) else "?%"


def _rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
