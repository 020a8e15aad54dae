"""Cache bookkeeping: eviction by tier then LRU, the byte cap, side entries, per-session limits, facts."""

from __future__ import annotations

from mlxclaude.engine.cache.store import PromptStore, Tier

SYSTEM = list(range(100))


def turn(session_tokens: int, tail: int) -> list[int]:
    return SYSTEM + [1000 + session_tokens] * tail


def test_eviction_takes_the_lowest_tier_first_then_the_least_recently_used():
    store = PromptStore(max_bytes=1000)
    system = store.insert(SYSTEM, "sys", 300, Tier.SYSTEM)
    old_turn = store.insert(turn(1, 5), "t1", 200, Tier.TURN, session="a")
    new_turn = store.insert(turn(2, 5), "t2", 200, Tier.TURN, session="b")
    side = store.insert([7, 7, 7], "title", 200, Tier.SIDE)
    assert [entry.payload for entry in store.eviction_order()] == ["title", "t1", "t2", "sys"]
    store.touch(old_turn)  # now t2 is the least recently used turn
    assert [entry.payload for entry in store.eviction_order()] == ["title", "t2", "t1", "sys"]
    store.record("b", 10, 0, "miss")
    assert store.insert(turn(3, 5), "t3", 400, Tier.TURN, session="c") is not None  # 300 bytes must go
    assert side not in store.entries and new_turn not in store.entries  # side first, then the LRU turn
    assert old_turn in store.entries and system in store.entries
    assert store.nbytes == 900 and store.evictions == 2
    assert store.sessions["b"].evicted == 1


def test_byte_cap_holds_and_an_oversized_entry_is_refused():
    store = PromptStore(max_bytes=500)
    for index in range(10):
        assert store.insert([index, index + 1], index, 120, Tier.TURN) is not None
        assert store.nbytes <= 500
    assert len(store) == 4 and [entry.payload for entry in store.entries] == [6, 7, 8, 9]
    assert store.insert([99], "huge", 501, Tier.SYSTEM) is None
    assert store.refused == 1 and len(store) == 4
    store.set_max_bytes(250)
    assert store.nbytes <= 250 and [entry.payload for entry in store.entries] == [8, 9]


def test_side_entries_never_push_out_session_entries():
    store = PromptStore(max_bytes=1000)
    store.insert(SYSTEM, "sys", 400, Tier.SYSTEM)
    store.insert(turn(1, 3), "turn", 400, Tier.TURN, session="a")
    assert store.insert([5, 5], "title", 300, Tier.SIDE) is None  # would need a turn or system entry to go
    store.insert([5, 6], "probe", 150, Tier.SIDE)
    assert store.insert([5, 7], "title2", 200, Tier.SIDE) is not None  # room made among side entries only
    assert sorted(entry.payload for entry in store.entries) == ["sys", "title2", "turn"]


def test_a_turn_entry_may_displace_everything_below_system_before_system():
    store = PromptStore(max_bytes=1000)
    store.insert(SYSTEM, "sys", 500, Tier.SYSTEM)
    store.insert(turn(1, 3), "turn-a", 400, Tier.TURN, session="a")
    store.insert(turn(2, 3), "turn-b", 450, Tier.TURN, session="b")
    assert sorted(entry.payload for entry in store.entries) == ["sys", "turn-b"]
    store.insert(turn(3, 3), "turn-c", 900, Tier.TURN, session="c")
    assert [entry.payload for entry in store.entries] == ["turn-c"]


def test_per_session_turn_limit_and_redundant_prefixes():
    store = PromptStore(max_bytes=10_000, max_session_entries=2)
    first = store.insert(turn(1, 2), "t1", 10, Tier.TURN, session="a")
    second = store.insert(turn(1, 4), "t2", 10, Tier.TURN, session="a")  # extends t1: t1 is redundant
    assert first not in store.entries and second in store.entries
    store.insert(turn(1, 4) + [5], "t3-untrimmable", 10, Tier.TURN, session="a", trimmable=False)
    store.insert(turn(1, 4) + [6], "t4", 10, Tier.TURN, session="a", trimmable=False)
    assert sorted(entry.payload for entry in store.entries if entry.session == "a") == ["t3-untrimmable", "t4"]
    store.insert(turn(9, 4), "other", 10, Tier.TURN, session="b")
    assert len([entry for entry in store.entries if entry.session == "a"]) == 2


def test_system_entries_are_limited_in_number():
    store = PromptStore(max_bytes=10_000, max_system_entries=2)
    for index in range(4):
        store.insert([index] * 10, f"sys{index}", 10, Tier.SYSTEM)
    assert [entry.payload for entry in store.entries] == ["sys2", "sys3"]


def test_replacing_an_entry_keeps_the_higher_tier_and_counts_bytes_once():
    store = PromptStore(max_bytes=10_000)
    store.insert(SYSTEM, "sys", 100, Tier.SYSTEM)
    replaced = store.insert(SYSTEM, "same tokens from a side request", 120, Tier.SIDE)
    assert replaced is not None and replaced.tier == Tier.SYSTEM
    assert len(store) == 1 and store.nbytes == 120


def test_lookup_and_pop():
    store = PromptStore(max_bytes=10_000)
    store.insert(SYSTEM, "sys", 10, Tier.SYSTEM)
    entry = store.insert(turn(1, 3), "t", 10, Tier.TURN, session="a")
    walk = store.walk(turn(1, 3) + [42])
    assert [(length, item.payload) for length, item in walk.prefixes] == [(100, "sys"), (103, "t")]
    assert store.pop(entry) == "t"
    assert store.get(turn(1, 3)) is None and store.nbytes == 10


def test_facts_report_tiers_and_per_session_hit_rates():
    store = PromptStore(max_bytes=10_000)
    store.insert(SYSTEM, "sys", 100, Tier.SYSTEM)
    store.insert(turn(1, 3), "t", 50, Tier.TURN, session="a")
    store.record("a", 1000, 0, "miss")
    store.record("a", 1100, 1000, "hit")
    store.record(None, 10, 0, "miss")
    facts = store.facts()
    assert facts["entries"] == 2 and facts["bytes"] == 150
    assert facts["tiers"]["system"] == {"entries": 1, "bytes": 100}
    assert facts["tiers"]["turn"] == {"entries": 1, "bytes": 50}
    session = facts["sessions"]["a"]
    assert session["requests"] == 2 and session["hits"] == 1 and session["misses"] == 1
    assert session["hit_rate"] == round(1000 / 2100, 4) and session["entries"] == 1 and session["bytes"] == 50
    assert facts["requests"] == 3 and facts["cached_tokens"] == 1000


def test_a_sessions_anchor_outlives_its_later_turn_ends():
    store = PromptStore(max_bytes=10_000, max_session_entries=2)
    anchor = store.insert(turn(1, 2), "after user", 10, Tier.TURN, session="a", trimmable=False, anchor=True)
    for index in range(4):  # a tool loop: prompts ending with tool results
        store.insert(turn(1, 3 + index), f"loop{index}", 10, Tier.TURN, session="a", trimmable=False)
    assert anchor in store.entries
    assert sorted(entry.payload for entry in store.entries) == ["after user", "loop3"]


def test_only_the_most_recent_sessions_are_tracked():
    store = PromptStore(max_bytes=10, max_sessions=3)
    for index in range(5):
        store.record(f"s{index}", 10, 0, "miss")
    assert sorted(store.sessions) == ["s2", "s3", "s4"]
    assert store.totals.requests == 5
