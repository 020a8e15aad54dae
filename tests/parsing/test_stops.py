import pytest

from mlxclaude.parsing.stops import StopMatcher
from support.streaming import every_chunking


def run(stops: list[str], chunks: list[str]) -> tuple[str, str | None]:
    matcher = StopMatcher(stops)
    passed, matched = [], None
    for chunk in chunks:
        text, stop = matcher.feed(chunk)
        passed.append(text)
        if stop is not None:
            matched = stop
            break
    if matched is None:
        passed.append(matcher.flush())
    return "".join(passed), matched




CASES = [
    # (stop sequences, model text, expected passed text, expected stop)
    ([], "hello </block> world", "hello </block> world", None),
    (["</block>"], "<block>yes</block> trailing", "<block>yes", "</block>"),
    (["</block>"], "<block>no", "<block>no", None),
    (["</block>"], "ends with </blo", "ends with </blo", None),
    (["STOP"], "aSTSTOPb", "aST", "STOP"),
    (["\n\n"], "line one\nline two\n\nnext", "line one\nline two", "\n\n"),
    (["abc", "b"], "xabc", "xa", "b"),  # "b" completes first
    (["bc", "c"], "abc", "a", "bc"),  # same end: the longer one wins
    (["", "END"], "fooEND", "foo", "END"),
    (["END"], "END", "", "END"),
    (["abcd", "bc"], "abcx", "a", "bc"),  # completes inside a longer stop's partial match
    (["abc", "bc"], "abc", "", "abc"),  # a suffix of another, same end: the longer one wins
    (["ab", "abc"], "xabc", "x", "ab"),  # a prefix of another completes first
    (["ab", "ab", "b"], "aab", "a", "ab"),  # duplicates
    (["aab"], "aaab", "a", "aab"),  # the match restarts one character in
    (["🙂!", "\ud800"], "hi🙂🙂!", "hi🙂", "🙂!"),  # beyond the BMP; a lone surrogate as a stop
]


@pytest.mark.parametrize("stops,text,expected_text,expected_stop", CASES)
def test_stop_matching_is_independent_of_chunking(stops, text, expected_text, expected_stop):
    for chunks in every_chunking(text):
        assert run(stops, chunks) == (expected_text, expected_stop), chunks


def test_no_stops_passes_through_without_holding_back():
    matcher = StopMatcher([])
    assert matcher.feed("</blo") == ("</blo", None)
    assert matcher.flush() == ""


def test_holds_back_only_a_possible_stop_prefix():
    matcher = StopMatcher(["</block>"])
    assert matcher.feed("yes</bl") == ("yes", None)
    assert matcher.feed("ue") == ("</blue", None)


def test_input_after_a_match_is_discarded():
    matcher = StopMatcher(["X"])
    assert matcher.feed("aXb") == ("a", "X")
    assert matcher.matched == "X"
    assert matcher.feed("more") == ("", None)
    assert matcher.flush() == ""


def test_stop_string_is_returned_after_being_split_across_many_chunks():
    matcher = StopMatcher(["<|end|>"])
    assert [matcher.feed(piece) for piece in ["ok <", "|", "en", "d|", ">", "more"]] == [
        ("ok ", None), ("", None), ("", None), ("", None), ("", "<|end|>"), ("", None)]
    assert matcher.flush() == ""


def test_flush_releases_the_tail_and_starts_afresh():
    matcher = StopMatcher(["abc"])
    assert matcher.feed("xab") == ("x", None)
    assert matcher.flush() == "ab"
    assert matcher.feed("c") == ("c", None)  # "ab" is gone: it cannot complete "abc" any more
