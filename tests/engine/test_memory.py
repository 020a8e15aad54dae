"""The machine's memory facts (no mlx) and MLX's allocator figures (through the backend)."""

from __future__ import annotations

import sys

import pytest

from mlxclaude.engine.backend import DeviceMemory
from mlxclaude.engine.memory import MemoryFacts, memory_facts


def test_memory_facts_on_this_machine():
    facts = memory_facts()
    assert isinstance(facts, MemoryFacts)
    assert facts.total_bytes is not None and facts.total_bytes > 2**30
    if sys.platform.startswith("linux"):
        assert facts.available_bytes is not None and 0 < facts.available_bytes <= facts.total_bytes


@pytest.mark.mlx
def test_the_mlx_backend_reports_its_allocator(tiny_model_dir):
    from mlxclaude.engine.mlx_backend import MlxBackend

    backend = MlxBackend(str(tiny_model_dir), context_limit=4096, cache_max_bytes=1 << 20)
    try:
        facts = backend.memory_facts()
        assert isinstance(facts, DeviceMemory)
        assert facts.active_bytes and facts.active_bytes > 0  # the weights
        assert facts.peak_bytes is not None and facts.peak_bytes >= 0
    finally:
        backend.close()
