"""The model's own multi-token-prediction (MTP) head as a drafter: the seam, and why it is empty today.

Qwen3.5/3.6, DeepSeek V3/V4, Kimi K3, MiMo and others ship MTP layers that predict the tokens after the next one
from the last hidden state; drafting with them costs a fraction of a step. mlx-lm (0.32) loads none of them:
each model's `sanitize` drops the `mtp.*` weights, and no model exposes the hidden state an MTP layer reads. So
`speculative = "mtp"` is accepted, says why it cannot run, and decodes as `auto` does (prompt lookup, and the
draft model when one is set). An MTP drafter, once mlx-lm can run the head, is a `StreamDrafts.model`: an
object with `drafts(tokens, pending, limit) -> list[int]` (engine/speculative/speculator.py); verification,
acceptance and the policy are the same as for every drafter."""

from __future__ import annotations

from typing import Any, Optional


def mtp_unavailable(model: Any) -> Optional[str]:
    """Why this loaded model cannot draft with its MTP head (None: it can). Always a reason with mlx-lm 0.32."""
    import mlx_lm

    version = getattr(mlx_lm, "__version__", "?")
    kind = getattr(getattr(model, "args", None), "model_type", None) or type(model).__module__.rsplit(".", 1)[-1]
    return (f"mlx-lm {version} does not load multi-token-prediction heads ({kind} drops its mtp weights at load); "
            "decoding with speculative = auto instead")
