"""The radix trie over token ids: longest prefix, insert / lookup / remove, against a brute-force model."""

from __future__ import annotations

import random

from mlxclaude.engine.cache.trie import TokenTrie, common_prefix_length


def test_common_prefix_length_across_chunk_sizes():
    a = list(range(10_000))
    for cut in (0, 1, 31, 32, 33, 500, 4095, 9_999):
        b = a[:cut] + [-1] + a[cut + 1:]
        assert common_prefix_length(a, b) == cut
    assert common_prefix_length(a, a) == len(a)
    assert common_prefix_length(a, a[:10]) == 10
    assert common_prefix_length([1, 2, 3], (1, 2, 4)) == 2
    assert common_prefix_length(a, a, 5, 5, limit=7) == 7


def test_longest_prefix_and_exact_lookup():
    trie: TokenTrie[str] = TokenTrie()
    trie.insert([1, 2, 3], "system")
    trie.insert([1, 2, 3, 4, 5, 6], "turn1")
    trie.insert([1, 2, 3, 4, 5, 6, 7, 8], "turn2")
    trie.insert([1, 2, 9], "other")
    assert len(trie) == 4
    assert trie.get([1, 2, 3, 4, 5, 6]) == "turn1"
    assert trie.get([1, 2, 3, 4]) is None and trie.get([1, 2]) is None
    assert trie.longest_prefix([1, 2, 3, 4, 5, 6, 7, 8, 9]) == (8, "turn2")
    assert trie.longest_prefix([1, 2, 3, 4, 5, 6, 7, 0]) == (6, "turn1")
    assert trie.longest_prefix([1, 2, 3, 4, 5, 6, 7, 8], max_length=7) == (6, "turn1")
    assert trie.longest_prefix([1, 2, 4]) is None
    assert trie.longest_prefix([7]) is None


def test_walk_reports_the_common_prefix_and_the_entries_past_it():
    trie: TokenTrie[str] = TokenTrie()
    trie.insert([1, 2, 3], "system")
    trie.insert([1, 2, 3, 4, 5, 6], "turn")
    walk = trie.walk([1, 2, 3, 4, 9])  # diverges inside the edge 4,5,6
    assert walk.matched == 4
    assert walk.prefixes == [(3, "system")]
    assert walk.below == [(6, "turn")]
    walk = trie.walk([1, 2, 3, 4, 5, 6])  # exact
    assert walk.matched == 6 and walk.prefixes == [(3, "system"), (6, "turn")] and walk.below == []
    walk = trie.walk([1, 2])  # the query ends inside an edge: everything below shares it
    assert walk.matched == 2 and walk.prefixes == [] and sorted(walk.below) == [(3, "system"), (6, "turn")]
    assert trie.walk([5]).matched == 0


def test_insert_replaces_and_remove_compacts():
    trie: TokenTrie[str] = TokenTrie()
    assert trie.insert([1, 2, 3, 4], "a") is None
    assert trie.insert([1, 2, 3, 4], "b") == "a"
    trie.insert([1, 2, 5], "c")
    trie.insert([1, 2], "d")
    assert len(trie) == 3
    assert trie.remove([1, 2, 3]) is None  # not stored
    assert trie.remove([1, 2]) == "d"
    assert trie.remove([1, 2, 3, 4]) == "b"
    assert len(trie) == 1 and trie.get([1, 2, 5]) == "c"
    # after compaction the only path is one edge again
    assert list(trie._root.children.values())[0].edge == [1, 2, 5]
    assert trie.remove([1, 2, 5]) == "c"
    assert len(trie) == 0 and not trie._root.children


def test_random_operations_match_a_brute_force_model():
    rng = random.Random(7)
    trie: TokenTrie[int] = TokenTrie()
    model: dict[tuple[int, ...], int] = {}
    base = [rng.randrange(5) for _ in range(40)]
    for step in range(3000):
        length = rng.randrange(1, 40)
        tokens = base[:rng.randrange(0, length)] + [rng.randrange(4) for _ in range(rng.randrange(0, 6))]
        if not tokens:
            continue
        action = rng.random()
        if action < 0.5:
            assert trie.insert(tokens, step) == model.get(tuple(tokens))
            model[tuple(tokens)] = step
        elif action < 0.7:
            assert trie.remove(tokens) == model.pop(tuple(tokens), None)
        else:
            expected = max(((len(key), value) for key, value in model.items() if tuple(tokens[:len(key)]) == key),
                           default=None)
            assert trie.longest_prefix(tokens) == expected
            matched = max((common_prefix_length(list(key), tokens) for key in model), default=0)
            walk = trie.walk(tokens)
            assert walk.matched == matched
            below = sorted((len(key), value) for key, value in model.items()
                           if common_prefix_length(list(key), tokens) == matched and len(key) > matched)
            assert sorted(walk.below) == below
        assert len(trie) == len(model)
    assert sorted((tuple(key), value) for key, value in trie.items()) == sorted(model.items())
