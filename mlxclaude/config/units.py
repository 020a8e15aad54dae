"""Sizes in bytes: parsing "8GiB"/"512MB" and the one formatter (binary units, labelled as such); durations:
parsing "10m"/"1h30m" into seconds."""

from __future__ import annotations

import math
import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}


def parse_bytes(value: object) -> int:
    """8589934592, "8GiB", "8G" (binary), "8GB" (decimal), "1.5GiB" → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size in bytes, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = re.fullmatch(r"\s*(\d[\d_]*(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"expected a size in bytes (8589934592, 8GiB, 512MB), got {value!r}")
    return int(float(match.group(1).replace("_", "")) * _UNITS[unit])


def format_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"




_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|secs|sec|s|mins|min|m|hrs|hr|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60,
                     "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "w": 604800}
DURATION_EXAMPLES = '600 (seconds), "10m", "1h30m", "90s", "500ms", "2d"'


def parse_duration(value: object) -> float:
    """600 (a number: seconds), "10m", "1h30m", "90s", "500ms", "2d" → seconds (a text needs its unit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration that is not negative ({DURATION_EXAMPLES}), got {value!r}")
        return float(value)
    compact = value.strip().lower().replace(" ", "") if isinstance(value, str) else ""
    if not compact or _DURATION_PART.sub("", compact) != "":
        raise ValueError(f"expected a duration ({DURATION_EXAMPLES}), got {value!r}")
    return float(sum(float(amount) * _DURATION_SECONDS[unit] for amount, unit in _DURATION_PART.findall(compact)))
