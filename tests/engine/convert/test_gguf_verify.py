"""The import check's reference: text spelled from a GGUF vocabulary alone agrees with the tokenizer
rebuilt from it, for byte-level BPE and SentencePiece (with and without the space prefix)."""

from __future__ import annotations

import pytest

from mlxclaude.engine.convert.gguf_tokenizer import SPIECE_UNDERLINE, build_tokenizer
from mlxclaude.engine.convert.gguf_verify import gguf_text
from support.gguf_files import tokenizer_metadata

U = SPIECE_UNDERLINE
PIECES = [U, "h", "e", "l", "o", "w", "r", "d", f"{U}h", f"{U}he", "ll", "llo", f"{U}hello", f"{U}w", f"{U}wo",
          "rl", "rld", f"{U}world", "<think>"]


def spm_metadata(*, arch: str, add_space_prefix: bool) -> dict:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + PIECES
    return {
        "general.architecture": arch,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": [0.0] * 259 + [-100.0 + len(p) for p in PIECES],
        "tokenizer.ggml.token_type": [2, 3, 3] + [6] * 256 + [1] * (len(PIECES) - 1) + [4],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_space_prefix": add_space_prefix,
    }


@pytest.mark.parametrize("arch,prefix", [("llama", True), ("gemma3", False)])
@pytest.mark.parametrize("text", ["hello world", "hello zoo ü", "<think>hello  world\n"])
def test_sentencepiece_vocabulary(arch, prefix, text):
    metadata = spm_metadata(arch=arch, add_space_prefix=prefix)
    tokenizer, _ = build_tokenizer(metadata)
    ids = tokenizer.encode(text).ids
    assert ids[0] == 1  # <s>, skipped by both
    assert gguf_text(ids, metadata) == tokenizer.decode(ids, skip_special_tokens=True) == text


@pytest.mark.parametrize("text", ["Grüße, world!\n  def f(x): return x", "<|im_start|>user\nhi 😀<|im_end|>",
                                  "<think>maybe</think> 12"])
def test_byte_level_vocabulary(tiny_model_dir, text):
    metadata = tokenizer_metadata(tiny_model_dir)
    tokenizer, _ = build_tokenizer(metadata)
    ids = tokenizer.encode(text).ids
    assert gguf_text(ids, metadata) == tokenizer.decode(ids, skip_special_tokens=True)
    assert gguf_text(ids, metadata, skip_special=False) == tokenizer.decode(ids, skip_special_tokens=False) == text
