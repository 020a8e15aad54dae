"""The byte-level detokenizer against mlx-lm's own BPE detokenizer: the same pieces, token by token, on the tiny
model's vocabulary and on SmolLM2's (a real byte-level BPE), for any sequence of tokens: multi-byte characters
split across tokens, lone spaces, added tokens, and ids past the vocabulary. Left out of the draws: the token for
byte 0, which mlx-lm reads one way mid-reply and another when the reply ends with it pending (ours reads it the
mid-reply way throughout)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.mlx


def tokenizer_of(model_dir):
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    return load_tokenizer(model_dir)


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def vocabulary(request, tiny_model_dir):
    """A tokenizer, its maker of our detokenizers, and token sequences to draw."""
    from mlxclaude.engine.detokenizer import detokenizers_for

    model_dir = tiny_model_dir if request.param == "tiny" else request.getfixturevalue("smollm2_model_dir")
    tokenizer = tokenizer_of(model_dir)
    return tokenizer, detokenizers_for(tokenizer), sequences(tokenizer)


def interesting_ids(tokenizer) -> list[int]:
    """Tokens that exercise the waiting: lone spaces, bytes of incomplete UTF-8 characters, added tokens."""
    from mlx_lm.tokenizer_utils import _byte_decoder

    decoder = _byte_decoder()
    tokenmap = tokenizer.detokenizer.tokenmap
    spaces = [i for i, piece in enumerate(tokenmap) if piece and len(piece) == 1 and decoder.get(piece) == 32]
    partial = [i for i, piece in enumerate(tokenmap) if piece and all(decoder.get(c, 0) >= 0x80 for c in piece)]
    added = sorted(tokenizer.added_tokens_decoder) if hasattr(tokenizer, "added_tokens_decoder") else []
    assert spaces and partial and added
    return spaces + partial[:100] + added[:50]


def sequences(tokenizer):
    from mlx_lm.tokenizer_utils import _byte_decoder

    tokenmap = tokenizer.detokenizer.tokenmap
    nul = next(char for char, byte in _byte_decoder().items() if byte == 0)
    zero = {i for i, piece in enumerate(tokenmap) if piece == nul}
    interesting = interesting_ids(tokenizer)
    token = st.one_of(st.integers(0, len(tokenmap) - 1), st.sampled_from(interesting),
                      st.sampled_from(interesting[:1]), st.just(len(tokenmap) + 5))  # a lone space; past the vocabulary
    return st.lists(token.filter(lambda t: t not in zero), max_size=40)


def test_ours_is_the_byte_level_one_where_mlx_lm_uses_bpe(vocabulary):
    from mlxclaude.engine.detokenizer import ByteLevelDetokenizer

    tokenizer, new, _ = vocabulary
    first, second = new(), new()
    assert isinstance(first, ByteLevelDetokenizer) and first is not second
    first.add_token(tokenizer.encode("Hello", add_special_tokens=False)[0])
    assert second.text == "" and second.tokens == []  # replies do not share state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_same_pieces_as_mlx_lm_token_by_token(vocabulary, data):
    tokenizer, new, sequences_of_tokens = vocabulary
    tokens = data.draw(sequences_of_tokens)
    theirs, ours = tokenizer.detokenizer, new()
    for token in tokens:
        theirs.add_token(token)
        ours.add_token(token)
        assert ours.last_segment == theirs.last_segment
    try:
        theirs.finalize()
    except KeyError:  # mlx-lm's finalize cannot read an added token still pending; ours can
        return
    ours.finalize()
    assert ours.last_segment == theirs.last_segment
    assert ours.text == theirs.text and ours.tokens == theirs.tokens == tokens
