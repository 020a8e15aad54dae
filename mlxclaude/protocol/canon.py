"""Canonicalisation of prompt parts that vary between requests without changing their meaning.

Anything left varying here shifts the first prompt tokens and defeats prefix (KV) caching. Pure.

What was checked against a real Claude Code (2.1.197, `claude -p` with tool round trips, two
conversations; tests/engine/cache/test_claude_code_traffic.py keeps checking it):
- `system[0]` is `x-anthropic-billing-header: cc_version=…<3 hex>; cc_entrypoint=…;` and its suffix
  changes between conversations: dropped here (a block that is only the header, or a leading header
  line in a block or in a string system prompt).
- `cache_control` markers move between turns: request.py never reads them, so they never reach the prompt.
- `role: "system"` messages in `messages` stay where they are (request.py folds each into the user turn
  at its position as a <system-reminder>), so earlier turns render the same on the next turn.
- tool schemas: request.py passes each `input_schema` through in the order Claude Code sent it (identical
  JSON every turn), and templates serialise with `tojson` (no key sorting); keys are not re-sorted here on
  purpose: property order is what the model sees as argument order.
- thinking blocks of earlier turns become `reasoning_content`; the engine's cache only ever stores
  prompt tokens (never generated ones), so a template that re-renders or drops past reasoning changes
  tokens after the previous prompt's end, not inside it (see engine/cache/prompt_cache.py for the
  checkpoints that cover templates which drop reasoning once a new user message arrives).
With these, every main turn's rendered prompt is a strict token extension of the previous turn's.
"""

from __future__ import annotations

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def _without_header_line(text: str) -> str:
    """`text` without a leading billing-header line ("" when that line was all there was)."""
    stripped = text.lstrip()
    if not stripped.startswith(BILLING_HEADER_PREFIX):
        return text
    _, newline, rest = stripped.partition("\n")
    return rest.lstrip("\n") if newline else ""


def drop_billing_header(system_blocks: list[str]) -> list[str]:
    """Remove Claude Code's attribution header (its `cch=`/version suffix changes between runs)."""
    kept = []
    for block in system_blocks:
        cleaned = _without_header_line(block)
        if cleaned or not block.lstrip().startswith(BILLING_HEADER_PREFIX):
            kept.append(cleaned)
    return kept


def canonical_system_text(system: str) -> str:
    """A string system prompt with a leading billing-header line removed."""
    return _without_header_line(system)


def canonical_wire_system(system: object) -> object:
    """The wire `system` (a string, or a list of blocks) without the billing header, for a request passed on as
    it is: a block that was only the header goes, a text block keeps its other keys (cache_control)."""
    if isinstance(system, str):
        return canonical_system_text(system)
    if not isinstance(system, list):
        return system
    kept = []
    for block in system:
        text = block.get("text") if isinstance(block, dict) and block.get("type") == "text" else None
        if not isinstance(text, str):
            kept.append(block)
            continue
        cleaned = _without_header_line(text)
        if cleaned or not text.lstrip().startswith(BILLING_HEADER_PREFIX):
            kept.append({**block, "text": cleaned})
    return kept
