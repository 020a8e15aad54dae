"""Which MLX model to pull first, by how much memory the machine has.

Every pick is an mlx-community conversion whose chat template emits Hermes-style tool calls
(`<tool_call>{"name": …, "arguments": …}</tool_call>`), the format mlxclaude parses, and whose
attention layers are all full attention (their KV cache can be trimmed, so prefix caching works
across Claude Code turns). Sizes are the weights on disk; the rest of the memory goes to the
KV cache of a long Claude Code session, to macOS, and to Claude Code itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Tolerance for "how much RAM": Linux reports a little less than the nominal size
# (16 GB machines show ~15.5 GiB), macOS reports it exactly.
_NOMINAL_SLACK = 0.9


@dataclass(frozen=True)
class Recommendation:
    repo: str
    size_gb: float  # weights on disk, GB
    reason: str
    min_memory_gb: float  # smallest total RAM this pick is meant for

    def to_dict(self) -> dict:
        return asdict(self)


# Ascending by min_memory_gb: the last row whose minimum fits wins.
RECOMMENDATIONS: tuple[Recommendation, ...] = (
    Recommendation(
        repo="mlx-community/Qwen3-4B-Instruct-2507-4bit",
        size_gb=2.3,
        reason="small enough for 8 GB machines, follows Claude Code's tool calls better than older 7B models",
        min_memory_gb=0,
    ),
    Recommendation(
        repo="mlx-community/Qwen2.5-Coder-7B-Instruct-4bit",
        size_gb=4.3,
        reason="a 7B coding model that leaves room for a long context on 16 GB",
        min_memory_gb=16,
    ),
    Recommendation(
        repo="mlx-community/Qwen2.5-Coder-14B-Instruct-4bit",
        size_gb=8.3,
        reason="a stronger 14B coding model for 24 GB",
        min_memory_gb=24,
    ),
    Recommendation(
        repo="mlx-community/Qwen3-30B-A3B-Instruct-2507-4bit",
        size_gb=17.2,
        reason="30B mixture of experts with 3B active per token: fast, strong at agentic tool use",
        min_memory_gb=32,
    ),
    Recommendation(
        repo="mlx-community/Qwen3-30B-A3B-Instruct-2507-8bit",
        size_gb=32.5,
        reason="the same 30B-A3B model at 8 bits, closer to full quality, for 64 GB and up",
        min_memory_gb=64,
    ),
)


def _machine_memory_gb() -> float | None:
    from mlxclaude.engine import memory

    total = memory.memory_facts().total_bytes
    return total / 2**30 if total else None


def recommended_model(total_memory_gb: float | None = None) -> Recommendation:
    """The best pick from RECOMMENDATIONS for this much RAM (this machine's when None)."""
    memory = total_memory_gb if total_memory_gb is not None else _machine_memory_gb()
    if memory is None:
        return RECOMMENDATIONS[0]
    fitting = [rec for rec in RECOMMENDATIONS if memory >= rec.min_memory_gb * _NOMINAL_SLACK]
    return fitting[-1] if fitting else RECOMMENDATIONS[0]
