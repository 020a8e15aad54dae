"""The first-model recommendation table."""

from __future__ import annotations

import pytest

from mlxclaude.engine import device, memory
from mlxclaude.engine.device import DeviceFacts
from mlxclaude.engine.memory import MemoryFacts
from mlxclaude.models.recommend import CPU_RECOMMENDATION, RECOMMENDATIONS, Recommendation, recommended_model


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
@pytest.mark.parametrize("backend", ["Metal", "CUDA"])
def test_recommendation_by_memory(memory_gb, repo, backend):
    pick = recommended_model(memory_gb, backend=backend)
    assert isinstance(pick, Recommendation)
    assert pick.repo == repo and pick.reason and pick.size_gb > 0
    assert pick.backend == backend and pick.note == ""


@pytest.mark.parametrize("memory_gb", [2, 16, 512])
def test_on_the_cpu_a_small_model_whatever_the_memory_and_a_plain_word_on_speed(memory_gb):
    pick = recommended_model(memory_gb, backend="CPU")
    assert pick.repo == CPU_RECOMMENDATION.repo and "0.5B" in pick.repo and pick.size_gb < 1
    assert pick.backend == "CPU"
    assert "CPU" in pick.note and "slowly" in pick.note and "tokens per second" in pick.note
    assert "Apple silicon" in pick.note and "mlx[cuda]" in pick.note


def fake_device(monkeypatch, backend, gpu_bytes=None):
    monkeypatch.setattr(device, "device_facts", lambda: DeviceFacts(backend, "Device(gpu, 0)", gpu_bytes))


def test_defaults_to_this_machine(monkeypatch):
    fake_device(monkeypatch, "Metal")
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=24 * 2**30))
    assert recommended_model().repo == "mlx-community/Qwen2.5-Coder-14B-Instruct-4bit"
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts())
    assert recommended_model().repo == RECOMMENDATIONS[0].repo
    fake_device(monkeypatch, "CPU")
    assert recommended_model().repo == CPU_RECOMMENDATION.repo


def test_with_cuda_the_gpus_own_memory_counts(monkeypatch):
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=256 * 2**30))
    fake_device(monkeypatch, "CUDA", 16 * 2**30)  # a 16 GB card in a 256 GB machine
    assert recommended_model().repo == "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit"
    fake_device(monkeypatch, "CUDA")  # the card's memory unknown: the machine's RAM
    assert recommended_model().repo == RECOMMENDATIONS[-1].repo


def test_without_mlx_the_memory_alone_decides(monkeypatch):
    def broken():
        raise ImportError("no mlx")

    monkeypatch.setattr(device, "device_facts", broken)
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=16 * 2**30))
    pick = recommended_model()
    assert pick.repo == "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit" and pick.backend is None


def test_real_machine_is_known():
    pick = recommended_model()
    assert pick.repo in {rec.repo for rec in RECOMMENDATIONS} | {CPU_RECOMMENDATION.repo}
    assert pick.backend in ("Metal", "CUDA", "GPU", "CPU")


def test_table_is_sane():
    minimums = [rec.min_memory_gb for rec in RECOMMENDATIONS]
    assert minimums == sorted(minimums) and minimums[0] == 0
    assert len({rec.repo for rec in RECOMMENDATIONS}) == len(RECOMMENDATIONS)
    for rec in RECOMMENDATIONS:
        assert rec.repo.startswith("mlx-community/")
        assert rec.to_dict()["repo"] == rec.repo
        if rec.min_memory_gb:  # weights plus overhead stay within the ~75% macOS lets the GPU wire
            assert rec.size_gb * 1.2 <= rec.min_memory_gb * 0.75
