"""Streaming detokenizers for the hot path.

mlx-lm's detokenizer for byte-level BPE vocabularies (GPT-2's scheme: Llama 3, Qwen, SmolLM, Mistral's Tekken…)
maps every character of the text pending back to its byte in a Python loop, at every token: after the model
itself, the largest piece of the engine thread's work per token. `ByteLevelDetokenizer` gives the same text from
each token's bytes, worked out once per model, decoded in one call per token. Other vocabularies (SentencePiece,
the naive fallback) keep mlx-lm's own.
"""

from __future__ import annotations

from typing import Any, Callable


def detokenizers_for(tokenizer: Any) -> Callable[[], Any]:
    """What makes a fresh streaming detokenizer for `tokenizer` (an mlx-lm TokenizerWrapper), one per reply: the
    byte-level one where mlx-lm would give its BPE detokenizer (its tables built here, once), mlx-lm's own
    otherwise."""
    from mlx_lm.tokenizer_utils import BPEStreamingDetokenizer

    original = tokenizer.detokenizer
    if type(original) is not BPEStreamingDetokenizer:
        return lambda: tokenizer.detokenizer
    return ByteLevelDetokenizer(original.tokenmap).fresh


def _token_bytes(piece: str, byte_decoder: dict[str, int]) -> bytes:
    """A token's bytes as mlx-lm's BPE detokenizer reads them: a character of the byte alphabet is its byte;
    any other (an added token's text) is its UTF-8, and so is the alphabet's character for byte 0, as there."""
    out = bytearray()
    for char in piece:
        byte = byte_decoder.get(char, 0)
        if byte:
            out.append(byte)
        else:
            out.extend(char.encode("utf-8"))
    return bytes(out)


class ByteLevelDetokenizer:
    """mlx-lm's BPEStreamingDetokenizer's text from precomputed token bytes: `add_token`, `last_segment`,
    `finalize`, `text` and `tokens` as there. A reply's text waits while it ends in an incomplete UTF-8 character,
    and after a token that is a lone space (so the reply's first space can be dropped as the tokenizer's own
    decoding would)."""

    def __init__(self, tokenmap: list[str]) -> None:
        from mlx_lm.tokenizer_utils import _byte_decoder

        decoder = _byte_decoder()
        self._bytes = [_token_bytes(piece or "", decoder) for piece in tokenmap]
        self._lone_spaces = frozenset(token for token, piece in enumerate(tokenmap)
                                      if piece and len(piece) == 1 and decoder.get(piece) == 32)
        self.reset()

    def fresh(self) -> "ByteLevelDetokenizer":
        """Another detokenizer over the same tables, at the start of a reply."""
        other = object.__new__(ByteLevelDetokenizer)
        other._bytes, other._lone_spaces = self._bytes, self._lone_spaces
        other.reset()
        return other

    def reset(self) -> None:
        self.tokens: list[int] = []
        self._pieces: list[str] = []  # the text so far, never joined per token (mlx-lm's copies it at every one)
        self._returned = 0  # pieces `last_segment` has handed out
        self._pending = b""

    def add_token(self, token: int) -> None:
        self.tokens.append(token)
        self._pending += self._bytes[token] if 0 <= token < len(self._bytes) else b"!"
        text = self._pending.decode("utf-8", "replace")
        if not text.endswith("\ufffd") and token not in self._lone_spaces:
            self._add(text)

    def finalize(self) -> None:
        self._add(self._pending.decode("utf-8", "replace"))

    def _add(self, text: str) -> None:
        self._pending = b""
        if text[:1] == " " and not self._pieces:  # the reply's first space, as the tokenizer's decoding drops it
            text = text[1:]
        if text:
            self._pieces.append(text)

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    @property
    def last_segment(self) -> str:
        """The text added since the last call."""
        pieces, self._returned = self._pieces[self._returned:], len(self._pieces)
        return "".join(pieces)
