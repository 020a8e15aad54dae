"""Speculative decoding inside the batched engine: a drafter proposes the next tokens, one forward verifies them
(engine/speculative/verify.py), and a policy decides per step whether that pays (engine/speculative/policy.py)."""
