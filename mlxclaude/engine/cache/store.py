"""The bookkeeping half of the prompt cache: entries in a token trie, tiers, LRU order, a byte cap, sessions.

Pure Python: an entry's payload (mlx-lm cache objects) is opaque here, only its byte size counts.

Eviction takes the lowest tier first and, within a tier, the least recently used entry:
  SYSTEM  the system prompt + tools prefix, shared by every conversation of a project (lives longest)
  TURN    the end of a conversation turn (a main request of a session)
  SIDE    side requests: title generation, max_tokens=1 probes, anything else outside a session's turns
A SIDE entry never pushes out a higher tier: when it does not fit among SIDE entries it is not stored.
Counts are capped too: a few SYSTEM entries (one per project's system prompt), and a few TURN entries per
session (Claude Code's subagents share their parent's session id, each with its own conversation).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Optional, Sequence

from mlxclaude.engine.cache.trie import TokenTrie, Walk


class Tier(IntEnum):
    SIDE = 0
    TURN = 1
    SYSTEM = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(eq=False)
class Entry:
    tokens: list[int]
    payload: Any
    nbytes: int
    tier: Tier
    session: Optional[str] = None
    trimmable: bool = True
    anchor: bool = False  # the prompt ended with a user message: templates rewrite history back to there at most
    last_used: int = 0
    created_at: float = field(default_factory=time.time)
    uses: int = 0

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class SessionStats:
    requests: int = 0
    hits: int = 0
    partial: int = 0
    misses: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    evicted: int = 0
    last_seen: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "hits": self.hits, "partial": self.partial, "misses": self.misses,
            "prompt_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens,
            "hit_rate": round(self.cached_tokens / self.prompt_tokens, 4) if self.prompt_tokens else 0.0,
            "evicted": self.evicted,
        }


class PromptStore:
    """Entries keyed by their exact token sequence. Thread-safe: the engine thread mutates, /status reads."""

    def __init__(self, max_bytes: int, *, max_system_entries: int = 4, max_session_entries: int = 6,
                 max_sessions: int = 64, on_evict: Optional[Callable[[Entry], None]] = None) -> None:
        self.max_bytes = max_bytes
        self.max_system_entries = max_system_entries
        self.max_session_entries = max_session_entries
        self.max_sessions = max_sessions
        self.on_evict = on_evict
        self._trie: TokenTrie[Entry] = TokenTrie()
        self._entries: list[Entry] = []
        self._clock = itertools.count(1)
        self._lock = threading.RLock()
        self.nbytes = 0
        self.evictions = 0
        self.refused = 0
        self.sessions: dict[str, SessionStats] = {}
        self.totals = SessionStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    # --- lookup --------------------------------------------------------------------------------------

    def walk(self, tokens: Sequence[int]) -> Walk[Entry]:
        with self._lock:
            return self._trie.walk(tokens if isinstance(tokens, list) else list(tokens))

    def get(self, tokens: Sequence[int]) -> Optional[Entry]:
        with self._lock:
            return self._trie.get(list(tokens))

    def touch(self, entry: Entry) -> None:
        with self._lock:
            entry.last_used = next(self._clock)
            entry.uses += 1

    def promote(self, entry: Entry, tier: Tier) -> bool:
        """Raise an entry's tier (a side request stored a prefix a main request turns out to share)."""
        with self._lock:
            if entry.tier >= tier:
                return False
            entry.tier, entry.session = tier, None if tier == Tier.SYSTEM else entry.session
            entry.last_used = next(self._clock)
            if tier == Tier.SYSTEM:
                self._enforce_counts(entry)
            return True

    # --- insert / remove -----------------------------------------------------------------------------

    def insert(self, tokens: Sequence[int], payload: Any, nbytes: int, tier: Tier, *,
               session: Optional[str] = None, trimmable: bool = True, anchor: bool = False) -> Optional[Entry]:
        """Store an entry; returns it, or None when it could not be made to fit (it is then not stored).

        An entry already stored under the same tokens is replaced; the new one keeps the higher tier.
        """
        tokens = list(tokens)
        if not tokens:
            return None
        with self._lock:
            existing = self._trie.get(tokens)
            if existing is not None:
                tier = max(tier, existing.tier)
                session = session or existing.session
            if tier == Tier.TURN and session is not None and trimmable:
                self._drop_redundant(tokens, session)
            if nbytes > self.max_bytes or not self._make_room(nbytes - (existing.nbytes if existing else 0),
                                                             tier, keep=existing):
                self.refused += 1
                return None
            if existing is not None:
                self._discard(existing)
            entry = Entry(tokens, payload, nbytes, tier, session, trimmable, anchor, last_used=next(self._clock))
            self._trie.insert(tokens, entry)
            self._entries.append(entry)
            self.nbytes += nbytes
            self._enforce_counts(entry)
            return entry

    def pop(self, entry: Entry) -> Any:
        """Take an entry out (its payload now belongs to the caller, e.g. a generation that extends it)."""
        with self._lock:
            self._discard(entry)
            return entry.payload

    def remove(self, entry: Entry) -> None:
        self.pop(entry)

    def clear(self) -> None:
        with self._lock:
            self._trie.clear()
            self._entries.clear()
            self.nbytes = 0

    def set_max_bytes(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max_bytes
            self._make_room(0, Tier.SYSTEM, keep=None)

    def _discard(self, entry: Entry) -> None:
        if self._trie.get(entry.tokens) is entry:
            self._trie.remove(entry.tokens)
        try:
            self._entries.remove(entry)
        except ValueError:
            return
        self.nbytes -= entry.nbytes

    def _evict(self, entry: Entry) -> None:
        self._discard(entry)
        self.evictions += 1
        if entry.session and entry.session in self.sessions:
            self.sessions[entry.session].evicted += 1
        if self.on_evict is not None:
            self.on_evict(entry)

    def eviction_order(self) -> list[Entry]:
        with self._lock:
            return sorted(self._entries, key=lambda entry: (entry.tier, entry.last_used))

    def _make_room(self, extra: int, tier: Tier, keep: Optional[Entry]) -> bool:
        """Evict (lowest tier, least recently used first) until `extra` more bytes fit under the cap.

        A SIDE entry may only push out SIDE entries; if that is not enough nothing is evicted.
        """
        need = self.nbytes + extra - self.max_bytes
        if need <= 0:
            return True
        victims: list[Entry] = []
        for entry in self.eviction_order():
            if need <= 0:
                break
            if entry is keep:
                continue
            if tier == Tier.SIDE and entry.tier > Tier.SIDE:
                return False
            victims.append(entry)
            need -= entry.nbytes
        if need > 0:
            return False
        for entry in victims:
            self._evict(entry)
        return True

    def _drop_redundant(self, tokens: list[int], session: str) -> None:
        """With trimmable caches a session's older turn-end that is a prefix of the new one is redundant:
        the new entry, trimmed, serves it."""
        for entry in list(self._entries):
            if (entry.tier == Tier.TURN and entry.session == session and entry.trimmable
                    and len(entry) < len(tokens) and tokens[:len(entry)] == entry.tokens):
                self._discard(entry)

    def _enforce_counts(self, new: Entry) -> None:
        """At most max_system_entries SYSTEM entries, and max_session_entries TURN entries per session (a session's
        anchors, the ends of prompts that ended with a user message, go after its other entries)."""
        if new.tier == Tier.SYSTEM:
            systems = [entry for entry in self._entries if entry.tier == Tier.SYSTEM]
            for entry in sorted(systems, key=lambda e: e.last_used)[:max(0, len(systems) - self.max_system_entries)]:
                self._evict(entry)
        if new.tier == Tier.TURN and new.session is not None:
            same = [entry for entry in self._entries
                    if entry is not new and entry.tier == Tier.TURN and entry.session == new.session]
            excess = len(same) + 1 - self.max_session_entries
            for entry in sorted(same, key=lambda e: (e.anchor, e.last_used))[:max(0, excess)]:
                self._evict(entry)

    # --- sessions and facts --------------------------------------------------------------------------

    def record(self, session: Optional[str], prompt_tokens: int, cached_tokens: int, note: str) -> None:
        with self._lock:
            targets = [self.totals]
            if session:
                stats = self.sessions.get(session)
                if stats is None:
                    stats = self.sessions[session] = SessionStats(last_seen=time.time())
                    if len(self.sessions) > self.max_sessions:
                        oldest = min(self.sessions, key=lambda key: self.sessions[key].last_seen)
                        del self.sessions[oldest]
                targets.append(stats)
            for stats in targets:
                stats.requests += 1
                stats.prompt_tokens += prompt_tokens
                stats.cached_tokens += cached_tokens
                stats.last_seen = time.time()
                if note == "hit":
                    stats.hits += 1
                elif note == "partial":
                    stats.partial += 1
                else:
                    stats.misses += 1

    def facts(self) -> dict[str, Any]:
        with self._lock:
            tiers = {tier.label: {"entries": 0, "bytes": 0} for tier in reversed(Tier)}
            for entry in self._entries:
                tiers[entry.tier.label]["entries"] += 1
                tiers[entry.tier.label]["bytes"] += entry.nbytes
            sessions = {}
            for session, stats in sorted(self.sessions.items(), key=lambda item: -item[1].last_seen):
                mine = [entry for entry in self._entries if entry.session == session]
                sessions[session] = {**stats.as_dict(), "entries": len(mine),
                                     "bytes": sum(entry.nbytes for entry in mine)}
            return {
                "entries": len(self._entries),
                "bytes": self.nbytes,
                "max_bytes": self.max_bytes,
                "tiers": tiers,
                "evictions": self.evictions,
                "refused": self.refused,
                **{key: value for key, value in self.totals.as_dict().items() if key != "evicted"},
                "sessions": sessions,
            }
