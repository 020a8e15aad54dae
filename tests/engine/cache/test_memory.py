"""The default byte cap: a share of the memory available now."""

from __future__ import annotations

from mlxclaude.engine.cache import memory


def test_default_cap_is_a_quarter_of_available_memory(monkeypatch):
    monkeypatch.setattr(memory, "room_for_cache", lambda: 64 * 1024**3)
    assert memory.default_max_bytes() == 16 * 1024**3
    monkeypatch.setattr(memory, "room_for_cache", lambda: None)
    assert memory.default_max_bytes() == memory.FALLBACK_BYTES


def test_room_for_the_cache_is_read_on_this_machine():
    room = memory.room_for_cache()
    assert room is None or room > 0
