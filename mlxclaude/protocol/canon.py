"""Canonicalisation of prompt parts that vary between requests without changing their meaning.

Anything left varying here shifts the first prompt tokens and defeats prefix (KV) caching.
"""

from __future__ import annotations

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def drop_billing_header(system_blocks: list[str]) -> list[str]:
    """Remove Claude Code's attribution blocks (its `cch=`/version suffix changes between runs)."""
    return [block for block in system_blocks if not block.lstrip().startswith(BILLING_HEADER_PREFIX)]
