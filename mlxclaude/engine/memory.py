"""The machine's memory: how much there is and how much a new allocation could get now.

No mlx here (models list, doctor and recommend read it without loading MLX); what MLX's allocator
holds comes from the backend (Backend.memory_facts, engine/device.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_MACOS_FREE_PAGES = ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable")


@dataclass(frozen=True)
class MemoryFacts:
    total_bytes: Optional[int] = None  # physical memory; None where the OS does not say
    available_bytes: Optional[int] = None  # what a new allocation could get now; None where the OS does not say


def memory_facts() -> MemoryFacts:
    """Total: sysconf (Linux, macOS). Available: Linux MemAvailable within any cgroup (v2) limit; macOS
    vm_stat's free, inactive, speculative and purgeable pages."""
    total = _physical_memory()
    available = None
    try:
        if sys.platform.startswith("linux"):
            meminfo_total, available = _linux_meminfo()
            total = total or meminfo_total
            available = _within_cgroup_limit(available)
        elif sys.platform == "darwin":
            available = _macos_available()
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return MemoryFacts(total_bytes=total, available_bytes=available)


def _physical_memory() -> Optional[int]:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _linux_meminfo() -> tuple[Optional[int], Optional[int]]:
    fields: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            fields[key] = int(rest.split()[0]) * 1024
    return fields.get("MemTotal"), fields.get("MemAvailable")


def _within_cgroup_limit(available: Optional[int]) -> Optional[int]:
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if not limit.isdigit():
            return available  # "max": no limit
        room = max(0, int(limit) - int((cgroup / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return available
    return room if available is None else min(available, room)


def _macos_available() -> Optional[int]:
    out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5, check=True).stdout
    size = re.search(r"page size of (\d+) bytes", out)
    pages = {m.group(1): int(m.group(2)) for m in re.finditer(r'^"?([^:"]+)"?:\s+(\d+)\.', out, re.M)}
    free = sum(pages.get(key, 0) for key in _MACOS_FREE_PAGES)
    return free * int(size.group(1) if size else 16384) if free else None
