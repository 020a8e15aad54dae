import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlxclaude.routing.config import BackendSpec, RoutingConfig
from mlxclaude.routing.router import Route, Router, compile_pattern, specificity

BACKENDS = {name: BackendSpec(name=name, kind="mlx", model=name) for name in
            ("local", "small", "gpu", "big", "sonnet1m", "exact", "a", "b", "c", "d")}


def router(routes, fallbacks=None) -> Router:
    return Router(RoutingConfig(backends=BACKENDS, routes=tuple(routes), fallbacks=fallbacks or {}))


ISSUE = router([("*haiku*", "small"), ("*opus*", "gpu"), ("*", "local")])


@pytest.mark.parametrize("model_id, route", [
    ("claude-haiku-4-5-20251001", Route("*haiku*", "small")),
    ("claude-3-5-haiku-latest", Route("*haiku*", "small")),
    ("claude-opus-4-1", Route("*opus*", "gpu")),
    ("claude-opus-4-1-20250805", Route("*opus*", "gpu")),
    ("claude-sonnet-4-5", Route("*", "local")),
    ("claude-sonnet-4-5[1m]", Route("*", "local")),
    ("CLAUDE-HAIKU-4-5", Route("*haiku*", "small")),
    ("", Route("*", "local")),
    ("some/other model", Route("*", "local")),
])
def test_the_issue_routes(model_id, route):
    assert ISSUE.route(model_id) == route


def test_brackets_are_literal():
    table = router([("claude-sonnet-4-5[1m]", "sonnet1m"), ("claude-sonnet-4-5*", "big"), ("*", "local")])
    assert table.route("claude-sonnet-4-5[1m]") == Route("claude-sonnet-4-5[1m]", "sonnet1m")
    assert table.route("Claude-Sonnet-4-5[1M]").backend == "sonnet1m"
    assert table.route("claude-sonnet-4-5m").backend == "big"  # fnmatch would read [1m] as a character class
    assert table.route("claude-sonnet-4-51").backend == "big"
    assert router([("*[1m]", "sonnet1m")]).route("claude-opus-4-1[1m]").backend == "sonnet1m"
    assert router([("*[1m]", "sonnet1m")]).route("claude-opus-4-1m").backend == "local"


def test_question_mark_is_one_character():
    table = router([("claude-opus-4-?", "big")])
    assert table.route("claude-opus-4-1").backend == "big"
    assert table.route("claude-opus-4-10").backend == "local"


def test_regex_characters_are_literal():
    table = router([("a.b+c(d)|e^$", "exact")])
    assert table.route("a.b+c(d)|e^$").backend == "exact"
    assert table.route("axb+c(d)|e^$").backend == "local"


@pytest.mark.parametrize("routes, model_id, backend", [
    # an exact id beats any glob, wherever it is in the file
    ([("*opus*", "gpu"), ("claude-opus-4-1", "exact")], "claude-opus-4-1", "exact"),
    ([("claude-opus-4-1*", "gpu"), ("CLAUDE-OPUS-4-1", "exact")], "claude-opus-4-1", "exact"),
    # more literal characters win
    ([("*opus*", "gpu"), ("claude-opus-4*", "big")], "claude-opus-4-1", "big"),
    ([("claude-opus-4*", "big"), ("*opus*", "gpu")], "claude-opus-4-1", "big"),
    # equal literals: fewer wildcards
    ([("*opus-4-1", "a"), ("claude-opus-4-1", "exact"), ("*opus*4-1", "b")], "claude-opus-4-1", "exact"),
    ([("*opus*4-1", "b"), ("*opus-4-1", "a")], "claude-opus-4-1", "a"),
    # equal literals and wildcards: the earlier in the file
    ([("*opus*", "a"), ("*opus?", "b")], "claude-opus1", "a"),
    ([("claude*", "a"), ("*opus-4-1", "b")], "claude-opus-4-1", "b"),
    ([("*pus*", "a"), ("*4-1*", "b")], "claude-opus-4-1", "a"),
    ([("*4-1*", "b"), ("*pus*", "a")], "claude-opus-4-1", "b"),
    ([("*", "gpu")], "anything", "gpu"),
    ([("*", "gpu"), ("*opus*", "big")], "claude-opus-4-1", "big"),
])
def test_the_most_specific_pattern_wins(routes, model_id, backend):
    assert router(routes).route(model_id).backend == backend


def test_without_a_star_route_the_default_is_local():
    assert router([("*opus*", "gpu")]).route("claude-haiku-4-5").backend == "local"


@pytest.mark.parametrize("fallbacks, chain", [
    ({}, ["gpu"]),
    ({"gpu": ("local",)}, ["gpu", "local"]),
    ({"gpu": ("a", "b"), "a": ("c", "b"), "b": ("d",), "c": ("gpu",)}, ["gpu", "a", "b", "c", "d"]),
    ({"gpu": ("a",), "a": ("gpu",)}, ["gpu", "a"]),
    ({"gpu": ("a", "b"), "a": ("b", "local"), "b": ("a", "local"), "local": ("gpu",)}, ["gpu", "a", "b", "local"]),
    ({"local": ("a",)}, ["gpu"]),
])
def test_chain_is_breadth_first_each_backend_once(fallbacks, chain):
    assert router([("*opus*", "gpu")], fallbacks).chain("claude-opus-4-1") == chain


def test_chain_starts_at_the_default_route():
    assert router([("*opus*", "gpu")], {"local": ("small",)}).chain("claude-haiku-4-5") == ["local", "small"]


# property: route() picks a matching pattern, and no other matching one is more specific

PATTERN_CHARS = st.sampled_from(list("ab-*?[]1mAB."))
patterns = st.text(PATTERN_CHARS, min_size=0, max_size=8)
ids = st.text(st.sampled_from(list("ab-[]1mAB.xyz")), max_size=12)


def reference_match(pattern: str, model_id: str) -> bool:
    """fnmatch with `[` and `]` made literal (fnmatch escapes a bracket as [[] and []])."""
    escaped = "".join("[[]" if char == "[" else "[]]" if char == "]" else char for char in pattern.lower())
    return fnmatch.fnmatchcase(model_id.lower(), escaped)


@given(st.lists(patterns, max_size=8, unique=True), ids)
def test_route_returns_the_most_specific_matching_pattern(pattern_list, model_id):
    routes = [(pattern, f"b{index}") for index, pattern in enumerate(pattern_list)]
    chosen = router(routes).route(model_id)
    assert reference_match(chosen.pattern, model_id)
    effective = routes if any(p == "*" for p, _ in routes) else [*routes, ("*", "local")]
    index = effective.index((chosen.pattern, chosen.backend))
    mine = specificity(chosen.pattern, index)
    for other_index, (pattern, _) in enumerate(effective):
        if reference_match(pattern, model_id):
            assert mine <= specificity(pattern, other_index)


@given(patterns, ids)
def test_compiled_patterns_agree_with_fnmatch_on_literal_brackets(pattern, model_id):
    assert bool(compile_pattern(pattern).fullmatch(model_id)) == reference_match(pattern, model_id)
