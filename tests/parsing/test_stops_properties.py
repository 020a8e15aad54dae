"""StopMatcher against a naive reference, and its cost counted in automaton steps."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mlxclaude.parsing.stops import StopMatcher


def reference(stops: list[str], text: str) -> tuple[str, str | None]:
    """The first stop to complete wins, at the same end the longer one; the text before it stays."""
    stops = [stop for stop in stops if stop]
    for end in range(1, len(text) + 1):
        completed = [stop for stop in stops if text.startswith(stop, end - len(stop), end)]
        if completed:
            stop = max(completed, key=len)
            return text[:end - len(stop)], stop
    return text, None


def reference_held(stops: list[str], seen: str) -> int:
    """Length of the longest suffix of `seen` that is a proper prefix of a stop."""
    return max((k for stop in stops for k in range(1, len(stop))
                if seen.endswith(stop[:k])), default=0)


@st.composite
def cases(draw):
    alphabet = draw(st.sampled_from(["ab", "abc", "abcd", "a\n<🙂"]))
    stops = draw(st.lists(st.text(alphabet, max_size=6), max_size=8))
    text = draw(st.text(alphabet, max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    return stops, text, chunks


@settings(max_examples=400, deadline=None)
@given(cases())
def test_matches_the_reference_however_the_text_is_chunked(case):
    stops, text, chunks = case
    matcher = StopMatcher(stops)
    passed, matched, seen = "", None, ""
    for chunk in chunks:
        safe, stop = matcher.feed(chunk)
        passed += safe
        seen += chunk
        if stop is not None:
            matched = stop
            assert matcher.matched == stop
            break
        # Holds back exactly what could still grow into a stop, nothing more.
        assert passed == seen[:len(seen) - reference_held(stops, seen)]
    if matched is None:
        passed += matcher.flush()
    assert (passed, matched) == reference(stops, text)


class Counting:
    """Wraps a sequence or mapping that the automaton reads, and counts the reads."""

    def __init__(self, inner) -> None:
        self.inner, self.reads = inner, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.inner[key]

    def get(self, key, default=None):
        self.reads += 1
        return self.inner.get(key, default)

    def __contains__(self, key):
        return key in self.inner

    def __len__(self):
        return len(self.inner)


def steps_to_scan(stops: list[str], tokens: list[str]) -> int:
    """Edges tried (first-child, other-child, fail and root look-ups) while feeding `tokens`."""
    matcher = StopMatcher(stops)
    automaton = matcher._automaton
    names = ("_label", "_branch", "_fail", "_root")
    counters = [Counting(getattr(automaton, name)) for name in names]
    automaton._label, automaton._branch, automaton._fail, automaton._root = counters
    for token in tokens:
        matcher.feed(token)
    assert matcher.matched is None
    return sum(counter.reads for counter in counters)


def test_scanning_cost_is_linear_in_the_text_whatever_the_number_of_stops():
    rng = random.Random(7)
    text = "".join(rng.choice("ab") for _ in range(3000)) + "a" * 1000
    tokens = [text[i:i + 3] for i in range(0, len(text), 3)]
    few = ["a" * 40 + "c"]  # forever almost matching: the worst case for fail links
    many = few + ["".join(rng.choice("abc") for _ in range(rng.randint(5, 30))) + "c"
                  for _ in range(3000)]
    for stops in (few, many):
        # Each character takes at most one goto edge and each fail link taken undoes one, so at
        # most 2n tries away from the root (3 reads each: first child, other child, fail link)
        # plus one root look-up per character.
        assert steps_to_scan(stops, tokens) <= 7 * len(text)


def test_many_stops_sanity():
    rng = random.Random(1)
    alphabet = "abcdefghij <>/"
    stops = ["".join(rng.choices(alphabet, k=rng.randint(5, 30))) for _ in range(5000)]
    tokens = ["".join(rng.choices(alphabet, k=rng.randint(1, 5))) for _ in range(1000)]
    text = "".join(tokens)
    matcher = StopMatcher(stops)
    passed, matched = [], None
    for token in tokens:
        safe, matched = matcher.feed(token)
        passed.append(safe)
        if matched is not None:
            break
    if matched is None:
        passed.append(matcher.flush())
    ends = [(at + len(stop), -len(stop), stop) for stop in stops if (at := text.find(stop)) >= 0]
    end, _, stop = min(ends, default=(len(text), 0, None))
    assert ("".join(passed), matched) == (text[:end - len(stop or "")], stop)
