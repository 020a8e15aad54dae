"""Tokenizers rebuilt from GGUF metadata: byte-level BPE and SentencePiece-BPE vocabularies."""

from __future__ import annotations

import json

import pytest

from mlxclaude.engine.convert.gguf_tokenizer import (
    SPIECE_UNDERLINE,
    GgufTokenizerError,
    build_tokenizer,
    bytes_to_unicode,
    write_tokenizer_files,
)

U = SPIECE_UNDERLINE
SPM_PIECES = [U, "h", "e", "l", "o", "w", "r", "d", f"{U}h", f"{U}he", "ll", "llo", f"{U}hello", f"{U}w", f"{U}wo",
              "rl", "rld", f"{U}world", "<think>"]


def _spm_metadata(*, arch="llama", add_bos=True, add_space_prefix=None) -> dict:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + SPM_PIECES
    types = [2, 3, 3] + [6] * 256 + [1] * (len(SPM_PIECES) - 1) + [4]
    # longer pieces score higher (they are the later, rarer merges in a real SentencePiece model)
    scores = [0.0] * 259 + [-100.0 + len(p) for p in SPM_PIECES]
    meta = {
        "general.architecture": arch,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": scores,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": add_bos,
        "tokenizer.chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
    }
    if add_space_prefix is not None:
        meta["tokenizer.ggml.add_space_prefix"] = add_space_prefix
    return meta


def test_sentencepiece_vocab_merges_byte_fallback_and_bos():
    tok, facts = build_tokenizer(_spm_metadata())
    assert facts.kind == "llama" and facts.add_bos_token
    encoding = tok.encode("hello world")
    assert encoding.tokens == ["<s>", f"{U}hello", f"{U}world"]
    assert tok.decode(encoding.ids, skip_special_tokens=True) == "hello world"
    odd = tok.encode("hello zoo ü")  # z, ü are not in the vocabulary: byte fallback
    assert "<0x7A>" in odd.tokens and "<0xC3>" in odd.tokens
    assert tok.decode(odd.ids, skip_special_tokens=True) == "hello zoo ü"
    assert tok.encode("<think>hello", add_special_tokens=False).tokens[0] == "<think>"


def test_gemma_style_vocabulary_has_no_space_prefix():
    tok, facts = build_tokenizer(_spm_metadata(arch="gemma3", add_bos=False, add_space_prefix=False))
    assert not facts.add_bos_token
    assert tok.encode("hello world").tokens == ["h", "e", "llo", f"{U}world"]
    assert tok.decode(tok.encode("hello world").ids) == "hello world"


def test_written_files_load_with_transformers_and_mlx_lm(tmp_path):
    from mlx_lm.tokenizer_utils import SPMStreamingDetokenizer, load

    facts = write_tokenizer_files(_spm_metadata(), tmp_path, context_length=2048)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["bos_token"] == "<s>" and config["eos_token"] == "</s>" and config["unk_token"] == "<unk>"
    assert config["add_bos_token"] is True and config["model_max_length"] == 2048
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == 2
    assert facts.eos_token_ids == [2]
    wrapper = load(tmp_path, eos_token_ids=facts.eos_token_ids)
    assert isinstance(wrapper.detokenizer, SPMStreamingDetokenizer)  # mlx-lm recognised the decoder
    ids = wrapper.encode("hello world")
    assert ids[0] == 1 and wrapper.decode(ids, skip_special_tokens=True) == "hello world"
    assert wrapper.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "<s>hi"


def test_byte_level_respells_raw_tokens_and_marks_end_of_turn_tokens():
    alphabet = list(bytes_to_unicode().values())
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>"] + alphabet + ["Ġh", "Ġhi", " there"]
    meta = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "llama-bpe",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3, 3, 3, 4] + [1] * (len(tokens) - 4),
        "tokenizer.ggml.merges": ["Ġ h", "Ġh i"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 0,
    }
    tok, facts = build_tokenizer(meta)
    assert facts.eos_token_ids == [0, 2]  # eos, then <|im_end|> as an end-of-turn control token
    assert not facts.add_bos_token  # gpt2 vocabularies default to no BOS
    assert tok.encode(" hi<tool_call> there").tokens == ["Ġhi", "<tool_call>", "Ġthere"]  # " there" respelled
    assert tok.decode(tok.encode(" hi<|im_end|>").ids, skip_special_tokens=True) == " hi"


def test_unknown_pre_tokenizer_falls_back_with_a_warning():
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "brand-new",
            "tokenizer.ggml.tokens": list(bytes_to_unicode().values()), "tokenizer.ggml.merges": []}
    tok, facts = build_tokenizer(meta)
    assert facts.warnings and "brand-new" in facts.warnings[0]
    assert tok.decode(tok.encode("a b").ids) == "a b"


def test_unsupported_tokenizer_model_and_missing_vocabulary():
    with pytest.raises(GgufTokenizerError, match="'rwkv'"):
        build_tokenizer({"tokenizer.ggml.model": "rwkv", "tokenizer.ggml.tokens": ["a"]})
    with pytest.raises(GgufTokenizerError, match="tokenizer.ggml.tokens"):
        build_tokenizer({"tokenizer.ggml.model": "gpt2"})
