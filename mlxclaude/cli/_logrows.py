"""`mlxclaude logs` as rows: one line per record, in columns chosen to fit the terminal.

A column has a minimum width; a value wider than that (a TTFT of 100 s or more, a long event name) pushes
the rest of the row along and is never cut. On a narrow terminal the headers shorten, then the columns that
matter least go (level, session, new, cached, backend, kind): their values move into the detail, and a detail
that does not fit wraps onto indented lines; fields that repeat another or say what is usual (ROUTINE) are left
out of it, so a request takes three lines at 80 columns. `prefill_progress` lines read "42% of 18180 new after 12.0s, ~16s
left"; `backend_fallback` ones "gpu failed (connection refused) → local". The route a request matched is in the
detail only when every column fits (or the output is piped).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Optional

from mlxclaude.cli._logview import LEVEL_ALIASES, LEVELS, Entry, level_value

if TYPE_CHECKING:
    from rich.text import Text


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: int  # the least it takes; a longer value is written whole
    right: bool = False  # numbers line up on the right
    drop: int = 0  # on a narrow terminal, 1 goes first, then 2, …; 0 never goes
    label: str = ""  # its name in the detail once it has gone


COLUMNS: tuple[Column, ...] = (
    Column("time", "time", 8),
    Column("level", "level", 5, drop=1),
    Column("event", "event", 16),
    Column("request", "request", 8),
    Column("session", "session", 8, drop=2, label="session"),
    Column("kind", "kind", 5, drop=6, label="kind"),
    Column("backend", "backend", 7, drop=5, label="backend"),
    Column("prompt", "prompt", 6, right=True),
    Column("cached", "cached", 6, right=True, drop=4, label="cached"),
    Column("new", "new", 6, right=True, drop=3, label="new"),
    Column("out", "out", 5, right=True),
    Column("ttft", "ttft", 6, right=True),
    Column("prefill", "prefill tok/s", 13, right=True),
    Column("decode", "decode tok/s", 12, right=True),
    Column("cache", "cache", 7),
)
# below the full width: shorter headers (and event names) before any column goes
NARROW = {"event": ("event", 9), "prefill": ("pf t/s", 6), "decode": ("dec t/s", 7)}
SHORT_EVENTS = {"request_start": "start", "request_finish": "finish", "prefill_progress": "prefill",
                "request_error": "error", "request_cancelled": "cancelled", "count_tokens": "count",
                "backend_fallback": "fallback", "backend_loaded": "loaded", "backend_unloaded": "unloaded"}
SHOWN = {"ts", "level", "kind", "event", "request_id", "session", "request_kind", "prompt_tokens",
         "cached_tokens", "new_tokens", "output_tokens", "ttft_s", "prefill_tps", "decode_tps", "cache"}
# the backend is a column only on the records of one request; others (backend_loaded, …) say it in the detail
BACKEND_EVENTS = {"request_start", "request_finish", "request_error", "request_cancelled", "prefill_progress"}
WIDE_ONLY = {"route"}  # in the detail only when every column fits (or the output is piped)
PROGRESS_FIELDS = {"prefill_done", "prefill_total", "percent", "elapsed_s", "eta_s"}
DETAIL_NAMES = {"peak_memory_gb": "peak_gb", "stop_reason": "stop"}


def _always(value: Any) -> bool:
    return True


# on a narrow terminal (a column went), the fields of a request's records that repeat another or say what is usual
# stay out of the detail,
# so a request reads in three lines at 80 columns; piped and `--json` output keep them all
ROUTINE = {
    "model": _always, "stream": _always, "tools": _always, "max_tokens": _always,  # what Claude Code asked for
    "reused_tokens": _always, "diverged_at": _always,  # the cached count says both
    "finish": _always, "cache_entry": _always,  # the stop reason and cache column say them
    "queued": lambda value: value == 0, "batch": lambda value: value == 1,
    "queued_s": lambda value: _is_number(value) and value < 1,
}
NAMED_ONCE = ("session", "backend")  # a narrow view names these once per request, and again only if they change
NAMED_REQUESTS_KEPT = 256
LEVEL_STYLES = {"debug": "dim", "info": "dim", "warning": "yellow", "error": "bold red", "critical": "bold red"}
LEVEL_LABELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR", "critical": "CRIT"}
CONTINUATION_INDENT = 9  # wrapped detail starts under the event


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    short_events: bool = False

    @property
    def width(self) -> int:
        return sum(column.width for column in self.columns) + len(self.columns) - 1

    @property
    def dropped(self) -> tuple[Column, ...]:
        kept = {column.key for column in self.columns}
        return tuple(column for column in COLUMNS if column.key not in kept)


def layout_for(width: Optional[int]) -> Layout:
    """Every column at full width when they fit (or the width is unknown); else short headers, then fewer columns."""
    full = Layout(COLUMNS)
    if width is None or full.width <= width:
        return full
    columns = tuple(replace(column, header=NARROW[column.key][0], width=NARROW[column.key][1])
                    if column.key in NARROW else column for column in COLUMNS)
    layout = Layout(columns, short_events=True)
    for rank in sorted({column.drop for column in COLUMNS if column.drop}):
        if layout.width <= width:
            break
        layout = Layout(tuple(column for column in layout.columns if column.drop != rank), short_events=True)
    return layout


def cache_style(note: str) -> str:
    """Green for a hit, yellow for a partial reuse, red for a miss."""
    lowered = note.strip().lower()
    if lowered.startswith("hit"):
        return "green"
    if lowered.startswith("partial"):
        return "yellow"
    if lowered.startswith("miss"):
        return "red"
    return ""


def format_time(ts: Optional[float]) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def day_of(ts: Optional[float]) -> Optional[str]:
    return None if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def short_id(value: Any, prefix: str = "") -> str:
    if not value:
        return ""
    text = str(value)
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    return text[:8]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def count(value: Any) -> str:
    if not _is_number(value):
        return "" if value is None else str(value)
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def seconds(value: Any) -> str:
    """A time in seconds with the precision that matters at its size: 0.41s, 12.5s, 1234s."""
    if not _is_number(value):
        return "" if value is None else str(value)
    value = float(value)
    return f"{value:.2f}s" if value < 10 else f"{value:.1f}s" if value < 1000 else f"{value:.0f}s"


def rate(value: Any) -> str:
    if not _is_number(value):
        return "" if value is None else str(value)
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _level(record: dict[str, Any]) -> str:
    level = str(record.get("level") or "info").lower()
    return LEVEL_ALIASES.get(level, level)


def row_cells(record: dict[str, Any], *, short_events: bool = False) -> dict[str, tuple[str, str]]:
    """(text, style) of each column's key for one record: the testable core of the rendering."""
    level = _level(record)
    failed = level_value(level) >= LEVELS["error"]
    event = str(record.get("event") or "")
    note = str(record.get("cache") or "")
    return {
        "time": (format_time(record.get("ts")), "dim"),
        "level": (LEVEL_LABELS.get(level, level.upper()), LEVEL_STYLES.get(level, "")),
        "event": (SHORT_EVENTS.get(event, event) if short_events else event,
                  "bold red" if failed else "yellow" if level == "warning" else "bold"),
        "request": (short_id(record.get("request_id"), "req_"), "cyan"),
        "session": (short_id(record.get("session")), "magenta"),
        "kind": (str(record.get("request_kind") or ""), ""),
        "backend": (str(record.get("backend") or "") if event in BACKEND_EVENTS else "", "blue"),
        "prompt": (count(record.get("prompt_tokens")), ""),
        "cached": (count(record.get("cached_tokens")), "green" if record.get("cached_tokens") else ""),
        "new": (count(record.get("new_tokens")), ""),
        "out": (count(record.get("output_tokens")), ""),
        "ttft": (seconds(record.get("ttft_s")), ""),
        "prefill": (rate(record.get("prefill_tps")), ""),
        "decode": (rate(record.get("decode_tps")), ""),
        "cache": (note, cache_style(note)),
    }


def detail_chunks(record: dict[str, Any], cells: dict[str, tuple[str, str]],
                  dropped: Iterable[Column] = (), named: Optional[dict[str, str]] = None) -> list[tuple[str, str]]:
    """The rest of the record as (text, style) pieces that may each start a wrapped line: the error or message,
    a prefill's progress, the values of columns that did not fit (but not those in `named`, what this request's
    earlier records said), then key=value for every other field.
    Whether any column went tells the narrow form from the wide one: the route is shown only in the wide."""
    level = _level(record)
    style = "red" if level_value(level) >= LEVELS["error"] else ""
    dropped = list(dropped)
    event = record.get("event")
    rest = {key: value for key, value in record.items() if key not in SHOWN and value is not None
            and not (key == "backend" and event in BACKEND_EVENTS) and not (key in WIDE_ONLY and dropped)
            and not (dropped and event in BACKEND_EVENTS and key in ROUTINE and ROUTINE[key](value))}
    if dropped and "diverged_message" in rest:
        rest["diverged"] = f"msg{rest.pop('diverged_message')}/{rest.pop('diverged_role', '?')}"
    chunks: list[tuple[str, str]] = []
    if any(column.key == "level" for column in dropped) and level_value(level) >= LEVELS["warning"]:
        chunks.append((LEVEL_LABELS.get(level, level.upper()), LEVEL_STYLES.get(level, "")))
    if event == "backend_fallback":
        chunks.extend((word, "yellow") for word in fallback_text(rest).split(" ") if word)
    elif event in ("backend_loaded", "backend_unloaded") and "backend" in rest:
        name = str(rest.pop("backend"))
        model = rest.pop("model", None)
        chunks.append((name, "blue"))
        if model:
            chunks.append((f"({model})", ""))
    for key in ("error", "message"):
        if key in rest:
            chunks.extend((word, style) for word in str(rest.pop(key)).split(" ") if word)
    if record.get("event") == "prefill_progress":
        chunks.extend((piece, "") for piece in progress_pieces(record))
        for key in PROGRESS_FIELDS:
            rest.pop(key, None)
    for column in dropped:
        text, cell_style = cells.get(column.key, ("", ""))
        if named is not None and column.key in NAMED_ONCE and named.get(column.key) == text:
            continue
        if named is not None and column.key in NAMED_ONCE:
            named[column.key] = text
        if text and column.label:
            chunks.append((f"{column.label}={text}", cell_style))
    chunks.extend((f"{DETAIL_NAMES.get(key, key)}={_compact(value)}", style) for key, value in rest.items())
    return chunks


def fallback_text(rest: dict[str, Any]) -> str:
    """`gpu failed (connection refused) → local` (popping backend, error and next from `rest`)."""
    text = f"{rest.pop('backend', '?')} failed"
    error = rest.pop("error", None)
    if error:
        text += f" ({error})"
    following = rest.pop("next", None)
    return f"{text} → {following}" if following else text


def progress_pieces(record: dict[str, Any]) -> list[str]:
    """`42% of 18180 new`, `after 12.0s,`, `~29s left` for a prefill_progress record (each kept whole when wrapping)."""
    percent = record.get("percent")
    text = f"{percent:g}%" if _is_number(percent) else "?%"
    total = record.get("prefill_total")
    if _is_number(total):
        text += f" of {count(total)} new"
    pieces = [text]
    if _is_number(record.get("elapsed_s")):
        pieces.append(f"after {seconds(record['elapsed_s'])}")
    if _is_number(record.get("eta_s")):
        pieces[-1] += ","
        pieces.append(f"~{seconds(record['eta_s'])} left")
    return pieces


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# C0 and C1 controls, DEL, and the bidi controls that reorder what a terminal shows (Trojan Source)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with every control and bidi character shown as an escape (`\\x1b`, `\\u202e`): a request's
    model name or a raw line cannot set the terminal's title, clear it, or forge a log line."""
    return _UNPRINTABLE.sub(lambda match: ascii(match.group())[1:-1], text)


def printable(value: Any) -> Any:
    """A record with escape_controls applied to every string in it, keys included."""
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable(item) for item in value]
    return value


def _cell(text: str, column: Column) -> str:
    if len(text) >= column.width:
        return text  # never cut: the row moves along instead
    return text.rjust(column.width) if column.right else text.ljust(column.width)


class LineRenderer:
    """Renders entries as rich Text lines in the columns that fit `width` (the terminal's; None: all, one line
    each), with a dated rule whenever the day changes."""

    def __init__(self, width: Optional[int] = None) -> None:
        self.width = width
        self.layout = layout_for(width)
        self._day: Optional[str] = None
        self._named: dict[str, dict[str, str]] = {}  # request id → the NAMED_ONCE values its lines have shown

    def header(self) -> "Text":
        from rich.text import Text

        cells = [_cell(column.header, column) for column in self.layout.columns]
        return Text(" ".join(cells).rstrip(), style="bold")

    def render(self, entry: Entry) -> "list[Text]":
        from rich.text import Text

        lines = []
        day = day_of(entry.ts)
        if day is not None and day != self._day:
            self._day = day
            lines.append(Text(f"-- {day} --", style="dim"))
        record = printable(entry.record)
        cells = row_cells(record, short_events=self.layout.short_events)
        line = Text()
        for column in self.layout.columns:
            text, style = cells[column.key]
            if len(line):
                line.append(" ")
            line.append(_cell(text, column), style=style or None)
        line.rstrip()
        lines.append(line)
        for text, style in detail_chunks(record, cells, self.layout.dropped, self._named_for(record)):
            if self.width is not None and len(line) > CONTINUATION_INDENT and \
                    len(line) + 1 + len(text) > self.width:
                line = Text(" " * CONTINUATION_INDENT)
                lines.append(line)
            elif len(line) > CONTINUATION_INDENT or line.plain.strip():
                line.append(" ")
            line.append(text, style=style or None)
        return lines

    def _named_for(self, record: dict[str, Any]) -> Optional[dict[str, str]]:
        request = record.get("request_id")
        if not isinstance(request, str) or record.get("event") not in BACKEND_EVENTS:
            return None
        if request not in self._named and len(self._named) >= NAMED_REQUESTS_KEPT:
            del self._named[next(iter(self._named))]
        return self._named.setdefault(request, {})

    def render_all(self, entries: Iterable[Entry]) -> "list[Text]":
        return [line for entry in entries for line in self.render(entry)]
