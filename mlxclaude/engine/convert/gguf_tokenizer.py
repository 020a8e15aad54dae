"""Rebuild a Hugging Face fast tokenizer from the metadata of a GGUF file.

A GGUF carries no tokenizer.json: llama.cpp stores the vocabulary, merges, token types and special
ids as metadata (``tokenizer.ggml.*``).  This module turns those back into the files
``transformers.AutoTokenizer`` / ``mlx_lm.load`` read: tokenizer.json, tokenizer_config.json,
special_tokens_map.json and generation_config.json.

Two tokenizer models are handled, as llama.cpp names them in ``tokenizer.ggml.model``:

* ``gpt2``: byte-level BPE (SmolLM, Qwen, Llama 3 ...).  The pre-tokenizer regex is chosen from
  ``tokenizer.ggml.pre`` the way llama.cpp's llama-vocab.cpp does.
* ``llama``: SentencePiece BPE with byte fallback (Llama 2, Mistral, Gemma ...).  The file lists no
  merges, so they are derived from the vocabulary, ranked by score (by file position for Gemma).

Only ``tokenizers`` is imported here (transformers is not needed to write the files).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxclaude.errors import MlxClaudeError

log = logging.getLogger(__name__)

# llama.cpp token types (tokenizer.ggml.token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

SPIECE_UNDERLINE = "\u2581"

_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tokenizer.ggml.pre -> (split regexes applied in turn, BPE ignore_merges), after llama-vocab.cpp.
_LLAMA3 = ([_LLAMA3_SPLIT], True)
_QWEN2 = ([_QWEN2_SPLIT], False)
_STARCODER = ([r"\p{N}", _GPT2_SPLIT], False)
_GPT2 = ([_GPT2_SPLIT], False)
PRE_TOKENIZERS: dict[str, tuple[list[str], bool]] = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                     "lfm2", "dbrx", "smaug-bpe"), _LLAMA3),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "kormo"), _QWEN2),
    **dict.fromkeys(("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"), _STARCODER),
    **dict.fromkeys(("gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe", "trillion"), _GPT2),
    "tekken": ([_TEKKEN_SPLIT], True),
    **dict.fromkeys(("gpt-4o", "llama4", "minimax-m2"), ([_GPT4O_SPLIT], False)),
}

# Control tokens that end a turn (llama.cpp treats them as end-of-generation too).
END_OF_TURN_TOKENS = (
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<|return|>", "<|call|>",
)

GEMMA_ARCHES = ("gemma", "gemma2", "gemma3", "gemma3n")


class GgufTokenizerError(MlxClaudeError):
    """The GGUF's tokenizer metadata cannot be turned into a Hugging Face tokenizer."""


@dataclass
class TokenizerFacts:
    """What was written, for the caller's config.json and for reports."""

    kind: str  # "gpt2" | "llama"
    pre: str | None
    vocab_size: int
    bos_token_id: int | None
    eos_token_ids: list[int]
    pad_token_id: int | None
    add_bos_token: bool
    has_chat_template: bool
    warnings: list[str] = field(default_factory=list)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the alphabet of byte-level BPE vocabularies)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(
        range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _require(meta: dict[str, Any], key: str) -> Any:
    if key not in meta:
        raise GgufTokenizerError(
            f"the GGUF has no {key} metadata, so its tokenizer cannot be rebuilt",
            hint="re-export the GGUF with a recent llama.cpp convert_hf_to_gguf.py, "
                 "or import the original Hugging Face directory instead",
        )
    return meta[key]


def _token_id(meta: dict[str, Any], name: str, n_tokens: int) -> int | None:
    value = meta.get(f"tokenizer.ggml.{name}")
    if isinstance(value, int) and 0 <= value < n_tokens:
        return value
    return None


def _added_tokens(tokens: list[str], types: list[int]):
    from tokenizers import AddedToken

    special = [AddedToken(tokens[i], special=True, normalized=False)
               for i, t in enumerate(types) if t in (CONTROL, UNKNOWN) and tokens[i]]
    user = [AddedToken(tokens[i], special=False, normalized=False)
            for i, t in enumerate(types) if t == USER_DEFINED and tokens[i]]
    return special, user


def _unique_vocab(keys: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for index, key in enumerate(keys):
        vocab.setdefault(key, index)  # llama.cpp keeps the first of duplicated spellings too
    return vocab


def _byte_level(meta: dict[str, Any], tokens: list[str], types: list[int], facts: TokenizerFacts):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    alphabet = set(bytes_to_unicode().values())
    spelling = bytes_to_unicode()
    keys = []
    for token, kind in zip(tokens, types):
        if kind in (CONTROL, USER_DEFINED) or set(token) <= alphabet:
            keys.append(token)
        else:  # a normal token written as raw text: respell it in the byte alphabet
            keys.append("".join(spelling[b] for b in token.encode("utf-8")))
    merges_raw = _require(meta, "tokenizer.ggml.merges")
    merges = []
    for merge in merges_raw:
        left, sep, right = merge.partition(" ")
        if sep:
            merges.append((left, right))
    pre = meta.get("tokenizer.ggml.pre") or "default"
    splits, ignore_merges = PRE_TOKENIZERS.get(pre, (None, False))
    if splits is None:
        facts.warnings.append(f"unknown tokenizer.ggml.pre {pre!r}: using the GPT-2 split regex")
        splits = [_GPT2_SPLIT]
    tok = Tokenizer(models.BPE(_unique_vocab(keys), merges, fuse_unk=False, byte_fallback=False,
                               ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(split), behavior="isolated") for split in splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def _spm_merges(vocab: dict[str, int], rank: dict[str, float]) -> list[tuple[str, str]]:
    """Merges implied by a SentencePiece-BPE vocabulary: every split of a token into two tokens,
    best-ranked merged token first (what transformers' SentencePieceExtractor does)."""
    found = []
    for piece, piece_rank in rank.items():
        local = []
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                local.append((left, right, piece_rank))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        found.extend(local)
    found.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(left, right) for left, right, _ in found]


def _sentencepiece(meta: dict[str, Any], tokens: list[str], types: list[int], arch: str,
                   facts: TokenizerFacts):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    gemma = arch in GEMMA_ARCHES
    if gemma:  # Gemma GGUFs spell runs of spaces with real spaces; the vocab wants U+2581
        tokens = [SPIECE_UNDERLINE * len(t) if " " in t and not t.strip() else t for t in tokens]
    vocab = _unique_vocab(tokens)
    if "tokenizer.ggml.merges" in meta:
        merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"] if " " in m]
    else:
        if gemma:  # Gemma's scores do not follow its merge order; the file order does
            rank = {t: -float(i) for i, t in enumerate(tokens)}
        else:
            scores = meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
            rank = {}
            for t, s, kind in zip(tokens, scores, types):
                if kind in (NORMAL, USER_DEFINED, UNUSED):
                    rank.setdefault(t, float(s))
        merges = _spm_merges(vocab, rank)
    unk_id = _token_id(meta, "unknown_token_id", len(tokens))
    unk = tokens[unk_id] if unk_id is not None else ("<unk>" if "<unk>" in vocab else None)
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=unk, fuse_unk=True, byte_fallback=True))
    add_space_prefix = meta.get("tokenizer.ggml.add_space_prefix")
    if add_space_prefix is None:
        add_space_prefix = not gemma
    steps = [decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_space_prefix:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="first",
                                                     split=False)
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    else:
        tok.normalizer = normalizers.Replace(" ", SPIECE_UNDERLINE)
    tok.decoder = decoders.Sequence(steps)
    return tok


def build_tokenizer(metadata: dict[str, Any], arch: str | None = None):
    """A ``tokenizers.Tokenizer`` plus the facts about it, from plain GGUF metadata."""
    from tokenizers import processors

    meta = metadata
    arch = arch or meta.get("general.architecture") or ""
    kind = _require(meta, "tokenizer.ggml.model")
    tokens = list(_require(meta, "tokenizer.ggml.tokens"))
    types = list(meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    if len(types) != len(tokens):
        types = (types + [NORMAL] * len(tokens))[: len(tokens)]
    n = len(tokens)
    bos = _token_id(meta, "bos_token_id", n)
    eos = _token_id(meta, "eos_token_id", n)
    pad = _token_id(meta, "padding_token_id", n)
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if add_bos is None:
        add_bos = kind == "llama"  # llama.cpp's default for SentencePiece vocabularies
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token") or False)
    facts = TokenizerFacts(kind=kind, pre=meta.get("tokenizer.ggml.pre"), vocab_size=n, bos_token_id=bos,
                           eos_token_ids=[], pad_token_id=pad, add_bos_token=bool(add_bos and bos is not None),
                           has_chat_template=bool(meta.get("tokenizer.chat_template")))
    if kind == "gpt2":
        tok = _byte_level(meta, tokens, types, facts)
    elif kind == "llama":
        tok = _sentencepiece(meta, tokens, types, arch, facts)
    else:
        raise GgufTokenizerError(
            f"unsupported GGUF tokenizer model {kind!r}",
            hint="supported tokenizer models are 'gpt2' (byte-level BPE) and 'llama' (SentencePiece); "
                 "import the original Hugging Face directory instead",
        )
    special, user = _added_tokens(tokens, types)
    if bos is not None and types[bos] != CONTROL:
        from tokenizers import AddedToken
        special.append(AddedToken(tokens[bos], special=True, normalized=False))
    if eos is not None and types[eos] != CONTROL:
        from tokenizers import AddedToken
        special.append(AddedToken(tokens[eos], special=True, normalized=False))
    tok.add_special_tokens(special)
    tok.add_tokens(user)

    single, pair, specials = "$A:0", "$A:0 $B:1", []
    if facts.add_bos_token:
        single, pair = f"{tokens[bos]}:0 {single}", f"{tokens[bos]}:0 $A:0 {tokens[bos]}:1 $B:1"
        specials.append((tokens[bos], bos))
    if add_eos and eos is not None:
        single, pair = f"{single} {tokens[eos]}:0", f"{pair} {tokens[eos]}:1"
        specials.append((tokens[eos], eos))
    if specials:
        tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=specials)
    elif kind == "gpt2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)

    eos_ids = [eos] if eos is not None else []
    for name in ("eot_token_id", "eom_token_id"):
        extra = _token_id(meta, name, n)
        if extra is not None and extra not in eos_ids:
            eos_ids.append(extra)
    for i, (token, t) in enumerate(zip(tokens, types)):
        if t == CONTROL and token in END_OF_TURN_TOKENS and i not in eos_ids:
            eos_ids.append(i)
    facts.eos_token_ids = eos_ids
    return tok, facts


def write_tokenizer_files(metadata: dict[str, Any], out_dir: Path, *, arch: str | None = None,
                          context_length: int | None = None) -> TokenizerFacts:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json, generation_config.json."""
    meta = metadata
    tok, facts = build_tokenizer(meta, arch)
    tokens = meta["tokenizer.ggml.tokens"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))

    def text(token_id: int | None) -> str | None:
        return tokens[token_id] if token_id is not None else None

    unk_id = _token_id(meta, "unknown_token_id", len(tokens))
    specials = {
        "bos_token": text(facts.bos_token_id),
        "eos_token": text(facts.eos_token_ids[0] if facts.eos_token_ids else None),
        "unk_token": text(unk_id),
        "pad_token": text(facts.pad_token_id),
    }
    specials = {k: v for k, v in specials.items() if v is not None}
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "add_bos_token": facts.add_bos_token,
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token") or False),
        "clean_up_tokenization_spaces": False,
        **({"model_max_length": int(context_length)} if context_length else {}),
    }
    template = meta.get("tokenizer.chat_template")
    if template:
        config["chat_template"] = template
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(specials, indent=2, ensure_ascii=False) + "\n")
    generation: dict[str, Any] = {}
    if facts.bos_token_id is not None:
        generation["bos_token_id"] = facts.bos_token_id
    if facts.eos_token_ids:
        ids = facts.eos_token_ids
        generation["eos_token_id"] = ids[0] if len(ids) == 1 else ids
    if facts.pad_token_id is not None:
        generation["pad_token_id"] = facts.pad_token_id
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    for warning in facts.warnings:
        log.warning(warning)
    return facts
