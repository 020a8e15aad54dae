"""Shared bench helpers: put the repo and tests/ on sys.path, build or find a model."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for entry in (REPO, REPO / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))


def bench_model(path: str | None, **params) -> Path:
    if path:
        return Path(path)
    from tiny_model import ensure_tiny_model

    return ensure_tiny_model(**params)
