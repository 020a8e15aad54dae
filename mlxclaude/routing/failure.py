"""A target that could not start a turn (before the reply's first byte)."""

from __future__ import annotations

from mlxclaude.protocol.errors import ApiError


class TargetFailure(Exception):
    """`retryable`: the request was fine and this target could not serve it now, so a fallback may;
    `counts_against_health`: the failure counts towards the target's cooldown (a local model that is still
    loading does not)."""

    def __init__(self, error: ApiError, *, retryable: bool, counts_against_health: bool = True) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.counts_against_health = counts_against_health
