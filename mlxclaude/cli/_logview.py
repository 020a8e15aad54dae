"""Reading the daemon's JSON-lines log for `mlxclaude logs`.

Parsing, filtering and following are plain functions over lines (tested without a terminal);
cli/_logrows.py turns records into rich lines, colouring at read time so the file stays grep-able.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from mlxclaude.config.units import parse_duration
from mlxclaude.errors import UsageError

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical"}
KINDS = ("perf", "cache", "request", "daemon")
DEFAULT_TAIL = 50


@dataclass(frozen=True)
class Entry:
    """One log line: the record (a dict) and the line as written; non-JSON lines become `raw` records."""

    record: dict[str, Any]
    line: str
    is_json: bool = True

    @property
    def ts(self) -> Optional[float]:
        value = self.record.get("ts")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_line(line: str, *, last_ts: Optional[float] = None, last_raw_level: Optional[str] = None
               ) -> Optional[Entry]:
    """An Entry for one line; None for blank lines. Text that is not a JSON object (a traceback the daemon
    printed, say) becomes an entry of kind "raw" stamped with the previous line's time; an indented raw
    line keeps the level of the raw line before it (the rest of a traceback)."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if isinstance(record, dict):
        return Entry(record, text)
    if last_raw_level is not None and text[:1].isspace():
        level = last_raw_level
    else:
        level = "error" if _ERROR_TEXT.match(text) else "info"
    return Entry({"ts": last_ts, "level": level, "kind": "raw", "event": "(text)", "message": text.rstrip()}, text,
                 is_json=False)


_ERROR_TEXT = re.compile(r"\s*(Traceback|\w*(Error|Exception)\b|error:|fatal)", re.IGNORECASE)


class LineParser:
    """parse_line with the state that carries from line to line (the last time, the last raw level)."""

    def __init__(self) -> None:
        self.last_ts: Optional[float] = None
        self.last_raw_level: Optional[str] = None

    def parse(self, line: str) -> Optional[Entry]:
        entry = parse_line(line, last_ts=self.last_ts, last_raw_level=self.last_raw_level)
        if entry is not None:
            self.last_ts = entry.ts if entry.ts is not None else self.last_ts
            self.last_raw_level = None if entry.is_json else str(entry.record["level"])
        return entry


def parse_lines(lines: Iterable[str]) -> Iterator[Entry]:
    parser = LineParser()
    for line in lines:
        entry = parser.parse(line)
        if entry is not None:
            yield entry


def normalise_level(name: str) -> str:
    key = name.strip().lower()
    key = LEVEL_ALIASES.get(key, key)
    if key not in LEVELS:
        raise UsageError(f"unknown level {name!r}: use one of {', '.join(LEVELS)}")
    return key


def normalise_kinds(names: Iterable[str]) -> frozenset[str]:
    kinds = frozenset(name.strip().lower() for name in names)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"unknown kind {unknown[0]!r}: use {', '.join(KINDS)}")
    return kinds


def level_value(name: Any) -> int:
    key = str(name or "info").lower()
    return LEVELS.get(LEVEL_ALIASES.get(key, key), LEVELS["info"])


def parse_since(text: str, now: Optional[float] = None) -> float:
    """`10m`, `1h30m`, `2d` (that long ago) or an ISO time/date (local unless it has an offset) → epoch seconds."""
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    iso = text.strip()
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        raise UsageError(f"invalid --since {text!r}: use 10m, 1h, 2d or an ISO time like 2026-08-22T10:00") from None


@dataclass(frozen=True)
class LogFilter:
    since: Optional[float] = None          # epoch seconds; entries without a time pass
    level: Optional[str] = None            # the minimum level
    kinds: Optional[frozenset[str]] = None  # the records' `kind` field (perf, cache, request, daemon)

    def matches(self, entry: Entry) -> bool:
        record = entry.record
        if self.since is not None and entry.ts is not None and entry.ts < self.since:
            return False
        if self.level is not None and level_value(record.get("level")) < LEVELS[self.level]:
            return False
        if self.kinds is not None and record.get("kind") not in self.kinds:
            return False
        return True


def read_entries(path: Path, flt: LogFilter = LogFilter(), last: Optional[int] = None) -> tuple[list[Entry], int]:
    """The matching entries (only the last `last` of them when given) and the file offset read up to."""
    kept: deque[Entry] = deque(maxlen=last if last else None)
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.rfind(b"\n") + 1  # a half-written last line is left for follow_entries
    text = data[:end].decode("utf-8", errors="replace")
    for entry in parse_lines(text.splitlines()):
        if flt.matches(entry):
            kept.append(entry)
    return list(kept), end


def follow_entries(path: Path, flt: LogFilter = LogFilter(), *, offset: int = 0, poll: float = 0.25,
                   stop: Optional[Callable[[], bool]] = None,
                   sleep: Callable[[float], None] = time.sleep) -> Iterator[Entry]:
    """Entries appended after `offset`, forever (or until `stop()` is true). A truncated or replaced file
    is read again from its start; a missing one is waited for."""
    handle = None
    inode = None
    pending = b""
    parser = LineParser()
    try:
        while stop is None or not stop():
            if handle is None:
                try:
                    handle = open(path, "rb")
                except FileNotFoundError:
                    sleep(poll)
                    continue
                inode = os.fstat(handle.fileno()).st_ino
                handle.seek(offset)
            chunk = handle.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    entry = parser.parse(raw.decode("utf-8", errors="replace"))
                    if entry is not None and flt.matches(entry):
                        yield entry
                continue
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is None or current.st_ino != inode or current.st_size < handle.tell():
                handle.close()
                handle, offset, pending = None, 0, b""
                continue
            sleep(poll)
    finally:
        if handle is not None:
            handle.close()
