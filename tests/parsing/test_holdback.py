"""Holding back what could still become a marker, and the quick test for text that cannot hold one."""

from hypothesis import given
from hypothesis import strategies as st

from mlxclaude.parsing.holdback import first_byte_of, first_char_of, split_safe

MARKERS = ["<tool_call>", "[TOOL_CALLS]", "^x", "-y", "\\z", "]w", "éa", ""]
ALPHABET = "<>[]^-\\éazwxy T_CLOS"


@given(st.text(alphabet=ALPHABET, max_size=30), st.lists(st.sampled_from(MARKERS), max_size=4))
def test_text_the_pattern_does_not_find_holds_no_marker_and_no_beginning_of_one(text, markers):
    found = first_char_of(markers).search(text) is not None
    assert found == any(marker and marker[0] in text for marker in markers)
    if not found:
        assert split_safe(text, markers) == (text, "")
        assert not any(marker and marker in text for marker in markers)


@given(st.binary(max_size=30), st.lists(st.sampled_from([m.encode() for m in MARKERS] + [b"\xff\x00"]), max_size=4))
def test_the_bytes_pattern_finds_exactly_the_first_bytes(data, markers):
    found = first_byte_of(markers).search(data) is not None
    assert found == any(marker and marker[:1] in data for marker in markers)
