"""Which MLX model to pull first, by what MLX runs on here (Metal, CUDA or the CPU) and how much memory it has.

Every pick is an mlx-community conversion whose chat template emits Hermes-style tool calls
(`<tool_call>{"name": …, "arguments": …}</tool_call>`), the format mlxclaude parses, and whose
attention layers are all full attention (their KV cache can be trimmed, so prefix caching works
across Claude Code turns). Sizes are the weights on disk; the rest of the memory goes to the
KV cache of a long Claude Code session, to macOS, and to Claude Code itself.

On Metal the machine's RAM counts (unified memory); with CUDA the GPU's own memory when MLX says it. On
the CPU alone (the mlx[cpu] wheel) a model is slow whatever the RAM: the pick is the smallest one that
still calls tools, with a note saying so plainly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# Tolerance for "how much RAM": Linux reports a little less than the nominal size
# (16 GB machines show ~15.5 GiB), macOS reports it exactly.
_NOMINAL_SLACK = 0.9


@dataclass(frozen=True)
class Recommendation:
    repo: str
    size_gb: float  # weights on disk, GB
    reason: str
    min_memory_gb: float  # smallest total RAM this pick is meant for
    backend: str | None = None  # what it was picked for: "Metal", "CUDA", "CPU" (None: not known)
    note: str = ""  # a caveat to show with it (the CPU's speed)

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


CPU_RECOMMENDATION = Recommendation(
    repo="mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit",
    size_gb=0.3,
    reason="a 0.5B coding model with Claude Code's tool-call format and a 32k context: enough to try the loop",
    min_memory_gb=0,
    backend="CPU",
)
CPU_NOTE = ("MLX runs on the CPU here (no Metal, no CUDA): good for trying mlxclaude out, slowly. Expect a few "
            "prompt tokens per second (about 5/s with a 0.5B model on 2 cores), so Claude Code's first prompt "
            "(~19k tokens) can take an hour; later turns reuse the prompt cache. For real work use a Mac with "
            "Apple silicon or an NVIDIA GPU (pip install 'mlx[cuda]').")


def _machine_memory_gb() -> float | None:
    from mlxclaude.engine import memory

    total = memory.memory_facts().total_bytes
    return total / 2**30 if total else None


def _this_backend() -> tuple[str | None, float | None]:
    """What MLX runs on here and, for a discrete GPU, its memory in GiB; (None, None) when mlx cannot say."""
    try:
        from mlxclaude.engine.device import device_facts

        facts = device_facts()
    except Exception:  # mlx missing or broken: recommend by memory alone
        return None, None
    return facts.backend, (facts.memory_bytes / 2**30 if facts.memory_bytes else None)


def recommended_model(total_memory_gb: float | None = None, backend: str | None = None) -> Recommendation:
    """The pick for this backend ("Metal", "CUDA", "GPU", "CPU"; this machine's when None) and this much
    memory (the GPU's own for CUDA when known, else this machine's RAM, when None)."""
    if backend is None:
        backend, gpu_memory = _this_backend()
        if total_memory_gb is None:
            total_memory_gb = gpu_memory
    if backend == "CPU":
        return replace(CPU_RECOMMENDATION, note=CPU_NOTE)
    memory = total_memory_gb if total_memory_gb is not None else _machine_memory_gb()
    pick = RECOMMENDATIONS[0]
    if memory is not None:
        fitting = [rec for rec in RECOMMENDATIONS if memory >= rec.min_memory_gb * _NOMINAL_SLACK]
        pick = fitting[-1] if fitting else RECOMMENDATIONS[0]
    return replace(pick, backend=backend)
