"""The check after a GGUF import: load the new model directory with mlx-lm, run a few greedy tokens,
and hold the rebuilt tokenizer against the GGUF's own vocabulary.

The GGUF vocabulary (``tokenizer.ggml.tokens`` with their types) is the reference: every token id the
prompt encodes to and the model produces is spelled out from it byte by byte, independently of the
tokenizer.json we wrote, and the two texts must agree; a byte-level prompt must decode back to its
text, the generated text must survive a decode → encode → decode round trip, and the logits must be
finite.
A few tokens are enough: an id shift, a wrong byte alphabet or broken weights show at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxclaude.engine.convert.gguf_reader import GgufImportError
from mlxclaude.engine.convert.gguf_tokenizer import BYTE, CONTROL, SPIECE_UNDERLINE, UNKNOWN, bytes_to_unicode

VERIFY_QUESTION = "What is the capital of France?"
VERIFY_TOKENS = 4


@dataclass
class VerifyReport:
    prompt_tokens: int
    generated_ids: list[int]
    generated_text: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        shown = self.generated_text.replace("\n", "\\n")
        return (f"{len(self.generated_ids)} greedy tokens ({shown!r}) agree with the GGUF vocabulary "
                f"({self.seconds:.1f}s)")


def gguf_text(ids: list[int], metadata: dict[str, Any], *, skip_special: bool = True) -> str:
    """The text of ``ids`` spelled from the GGUF vocabulary alone (what llama.cpp would print)."""
    tokens = metadata["tokenizer.ggml.tokens"]
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    kind = metadata.get("tokenizer.ggml.model")
    specials = {metadata.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos")}
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    out = bytearray()
    for i in ids:
        token, kind_of = tokens[i], types[i] if i < len(types) else 1
        if kind_of in (CONTROL, UNKNOWN) or i in specials:
            if not skip_special:
                out += token.encode()
        elif kind == "llama" and kind_of == BYTE and token.startswith("<0x"):
            out.append(int(token[3:-1], 16))
        elif kind == "llama":
            out += token.replace(SPIECE_UNDERLINE, " ").encode()
        elif kind_of == 1:  # byte-level BPE: each character stands for one byte
            out += b"".join(bytes([byte_of[c]]) if c in byte_of else c.encode() for c in token)
        else:
            out += token.encode()
    text = out.decode("utf-8", errors="replace")
    add_prefix = metadata.get("tokenizer.ggml.add_space_prefix")
    if kind == "llama" and (add_prefix if add_prefix is not None else True) and text.startswith(" "):
        text = text[1:]  # the space SentencePiece prepends is not part of the text
    return text


def verify_import(model_dir: Path | str, metadata: dict[str, Any], *, max_tokens: int = VERIFY_TOKENS,
                  question: str = VERIFY_QUESTION) -> VerifyReport:
    """Load ``model_dir``, generate ``max_tokens`` greedy tokens and check them (see the module doc)."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import generate_step

    started = time.perf_counter()
    try:
        model, tokenizer = load(str(model_dir))
    except Exception as exc:  # a config or weights mlx-lm cannot load: the import is unusable
        raise GgufImportError(f"mlx-lm cannot load the imported model: {exc}",
                              hint="this is a bug in the GGUF import; please report it with the file's name") from exc
    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    if getattr(hf, "chat_template", None):
        prompt = hf.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        tokenize=False)
    else:
        prompt = "The capital of France is"
    prompt_ids = hf.encode(prompt, add_special_tokens=not getattr(hf, "chat_template", None))
    problems: list[str] = []
    generated: list[int] = []
    for token, logprobs in generate_step(mx.array(prompt_ids), model, max_tokens=max_tokens):
        token = int(token)
        if not math.isfinite(float(mx.max(logprobs).item())):
            problems.append("the model's logits are not finite (NaN or inf): the weights did not convert")
            break
        generated.append(token)
        if token in getattr(tokenizer, "eos_token_ids", ()):
            break
    n_tokens = len(metadata["tokenizer.ggml.tokens"])
    outside = [i for i in prompt_ids + generated if i >= n_tokens]
    if outside:
        problems.append(f"token ids {outside[:5]} are outside the GGUF vocabulary ({n_tokens} tokens)")
    else:
        for label, ids in (("prompt", prompt_ids), ("generated", generated)):
            ours, theirs = hf.decode(ids, skip_special_tokens=True), gguf_text(ids, metadata)
            if "\ufffd" in ours + theirs:  # bytes that are no UTF-8 (yet): each decoder replaces them its own way
                continue
            if ours != theirs:
                problems.append(f"the {label} tokens {ids[:8]} decode to {ours[:60]!r} with the rebuilt tokenizer "
                                f"but to {theirs[:60]!r} with the GGUF vocabulary")
    if metadata.get("tokenizer.ggml.model") == "gpt2" and hf.decode(prompt_ids) != prompt and not problems:
        # byte-level BPE round-trips exactly (SentencePiece may respell the spaces around special tokens)
        problems.append(f"the prompt does not decode back to its text ({hf.decode(prompt_ids)[:60]!r})")
    text = hf.decode(generated, skip_special_tokens=True)
    round_trip = hf.decode(hf.encode(text, add_special_tokens=False), skip_special_tokens=True)
    if round_trip != text and "\ufffd" not in text:
        problems.append(f"the generated text {text!r} does not survive decode → encode → decode ({round_trip!r})")
    return VerifyReport(len(prompt_ids), generated, text, time.perf_counter() - started, problems)
