"""Whether two tokenizers are the same vocabulary: a draft model's tokens must mean the main model's. Pure."""

from __future__ import annotations

from typing import Any, Optional

PROBE = "def main():\n    print('Hello, world!')  # ünïcode ✓ 12345\n{\"key\": [1, 2.5, null]}"


def same_vocabulary(main: Any, draft: Any) -> Optional[str]:
    """None when `draft` tokenizes as `main` does; else what differs."""
    main_vocab, draft_vocab = main.get_vocab(), draft.get_vocab()
    if len(main_vocab) != len(draft_vocab):
        return f"its vocabulary has {len(draft_vocab)} tokens, the model's {len(main_vocab)}"
    if main.encode(PROBE, add_special_tokens=False) != draft.encode(PROBE, add_special_tokens=False):
        return "its tokenizer splits text differently"
    if set(getattr(main, "eos_token_ids", ()) or ()) != set(getattr(draft, "eos_token_ids", ()) or ()):
        return "its end-of-reply tokens differ"
    return None
