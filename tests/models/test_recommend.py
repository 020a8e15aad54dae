"""The first-model recommendation table."""

from __future__ import annotations

import pytest

from mlxclaude.engine import memory
from mlxclaude.engine.memory import MemoryFacts
from mlxclaude.models.recommend import RECOMMENDATIONS, Recommendation, recommended_model


@pytest.mark.parametrize(
    ("memory_gb", "repo"),
    [
        (4, "mlx-community/Qwen3-4B-Instruct-2507-4bit"),
        (8, "mlx-community/Qwen3-4B-Instruct-2507-4bit"),
        (15.5, "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit"),  # a 16 GB Linux box reports a little less
        (16, "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit"),
        (24, "mlx-community/Qwen2.5-Coder-14B-Instruct-4bit"),
        (32, "mlx-community/Qwen3-30B-A3B-Instruct-2507-4bit"),
        (48, "mlx-community/Qwen3-30B-A3B-Instruct-2507-4bit"),
        (64, "mlx-community/Qwen3-30B-A3B-Instruct-2507-8bit"),
        (512, "mlx-community/Qwen3-30B-A3B-Instruct-2507-8bit"),
    ],
)
def test_recommendation_by_memory(memory_gb, repo):
    pick = recommended_model(memory_gb)
    assert isinstance(pick, Recommendation)
    assert pick.repo == repo and pick.reason and pick.size_gb > 0


def test_defaults_to_this_machine(monkeypatch):
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=24 * 2**30))
    assert recommended_model().repo == "mlx-community/Qwen2.5-Coder-14B-Instruct-4bit"
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts())
    assert recommended_model() == RECOMMENDATIONS[0]


def test_real_machine_memory_is_known():
    assert recommended_model() in RECOMMENDATIONS


def test_table_is_sane():
    minimums = [rec.min_memory_gb for rec in RECOMMENDATIONS]
    assert minimums == sorted(minimums) and minimums[0] == 0
    assert len({rec.repo for rec in RECOMMENDATIONS}) == len(RECOMMENDATIONS)
    for rec in RECOMMENDATIONS:
        assert rec.repo.startswith("mlx-community/")
        assert rec.to_dict()["repo"] == rec.repo
        if rec.min_memory_gb:  # weights plus overhead stay within the ~75% macOS lets the GPU wire
            assert rec.size_gb * 1.2 <= rec.min_memory_gb * 0.75
