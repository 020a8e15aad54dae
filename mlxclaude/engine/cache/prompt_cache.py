"""The engine's prompt cache: reuse the longest cached token prefix, prefill only the rest.

One request goes `lease = cache.begin(prompt, chat, cancel)` → generate from `lease.cache`, feeding
`prompt.tokens[lease.offset:]` → `cache.finish(lease)`.

Where snapshots come from (checkpoints):
- the end of the system prompt + tools (`RenderedPrompt.system_end`): shared by every conversation
  of a project, kept in the SYSTEM tier and saved to disk;
- the end of every prompt, whatever the role of its last message: the next turn of the conversation
  extends it. Kept in the TURN tier for main requests of a session, SIDE otherwise.
With trimmable caches (plain KV) the live cache is cut back to the prompt after generation and stored
as is (no copy); the system snapshot is a tight copy made once per distinct system prompt. With caches
that cannot be cut back (sliding windows, SSM / linear attention states) the prefill stops at each
checkpoint to take a copy-on-write snapshot, and the end-of-prompt snapshot is taken one token early
(generation needs that token's logits); a think-tail checkpoint covers templates whose generation prompt
opens a <think> block (or an empty <think></think> when thinking is off) that the next turn does not render.

On a hit with a trimmable cache, the session's own turn-end entry is handed to the generation (moved out
of the store, no copy) and the longer prompt goes back in afterwards (it serves the shorter one too, cut
back). Shared entries (system prefixes, other sessions'), and every entry of a cache that cannot be cut
back, are cloned copy-on-write and stay. A session keeps a few turn-ends; the ends of prompts that ended
with a user message (anchors: templates rewrite history back to there at most, e.g. dropping reasoning)
are the last of them to go. Side requests (title, probes) only ever clone, and store at most in SIDE.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from mlxclaude.engine.backend import GenerationProgress, RenderedPrompt
from mlxclaude.engine.cache import kv
from mlxclaude.engine.cache.boundary import message_at
from mlxclaude.engine.cache.memory import default_max_bytes
from mlxclaude.engine.cache.persist import DiskPrefixes, model_stamp
from mlxclaude.engine.cache.store import Entry, PromptStore, Tier
from mlxclaude.protocol.chat import ChatRequest

SIDE_KINDS = frozenset({"title", "probe", "count"})
THINK_TAIL = 12  # tokens at the end of a prompt searched for a generation prompt's <think>


def is_side_request(chat: ChatRequest) -> bool:
    """Title generation, max_tokens=1 probes, count_tokens, and tool-less requests inside a session."""
    return chat.kind in SIDE_KINDS or (chat.kind == "side" and chat.session_id is not None)


@dataclass
class Lease:
    """A cache handed to one generation: `offset` tokens of the prompt are in it, `reused` of them came from the store."""

    cache: list[Any]
    reused: int
    offset: int
    note: str
    extra: dict[str, Any]
    tokens: list[int]
    system_end: Optional[int]
    session: Optional[str]
    side: bool
    anchor: bool = False
    moved: Optional[Entry] = None
    stored: list[int] = field(default_factory=list)


class PromptCache:
    def __init__(self, model: Any, tokenizer: Any = None, *, max_bytes: Optional[int] = None,
                 prefill_step_size: int = 2048, persist_dir: Optional[Path] = None,
                 model_path: Optional[str] = None, max_system_entries: int = 4,
                 max_session_entries: int = 6) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self.model = model
        self.tokenizer = tokenizer
        self.prefill_step_size = prefill_step_size
        self._make = lambda: make_prompt_cache(model)
        self.trimmable = kv.always_trimmable(self._make())
        self.auto_max_bytes = max_bytes is None
        self.store = PromptStore(default_max_bytes() if max_bytes is None else max_bytes,
                                 max_system_entries=max_system_entries, max_session_entries=max_session_entries)
        self.disk: Optional[DiskPrefixes] = None
        if persist_dir is not None and model_path is not None:
            self.disk = DiskPrefixes(Path(persist_dir), model_stamp(model_path), keep=max_system_entries)
            self._load_from_disk()

    # --- one request ---------------------------------------------------------------------------------

    def begin(self, prompt: RenderedPrompt, chat: ChatRequest, cancel: Optional[threading.Event] = None,
              progress: Optional[GenerationProgress] = None, *, prefill: bool = True, take: bool = True) -> Lease:
        """Look the prompt up and lease the longest usable prefix; `progress` (when given) learns what was reused
        and follows the prefill to checkpoints done here. With caches that cannot be cut back it also prefills
        up to the checkpoints, snapshotting each, unless `prefill` is False: then whoever prefills (the batch)
        stops at `checkpoints(lease, prompt)` and hands each snapshot to `store_checkpoint`. `take` False
        clones a session's own turn-end instead of moving it out of the store: a batch copies the cache it is
        given anyway, and a concurrent request may want the same entry."""
        tokens = list(prompt.tokens)
        limit = len(tokens) - 1  # generation needs at least one prompt token to run
        side = is_side_request(chat)
        walk = self.store.walk(tokens)
        prefix = None
        for length, entry in walk.prefixes:
            if 0 < length <= limit:
                prefix = entry
        cache: Optional[list[Any]] = None
        reused, used, moved, whole = 0, None, None, False

        if self.trimmable:  # an entry that goes past or diverges from the prompt, cut back to the common part
            share = min(walk.matched, limit)
            beyond = [entry for _, entry in walk.below] + [entry for length, entry in walk.prefixes if length > limit]
            if beyond and share > (len(prefix) if prefix else 0):
                source = max(beyond, key=lambda entry: entry.last_used)
                cache = kv.clone_prefix(source.payload, share)
                if cache is not None:
                    reused, used, whole = share, source, share == limit
        if cache is None and prefix is not None:
            if (take and self.trimmable and not side and chat.session_id is not None and prefix.tier == Tier.TURN
                    and prefix.session == chat.session_id):
                cache, moved = self.store.pop(prefix), prefix
            else:
                cache = kv.clone(prefix.payload)
            reused, used, whole = len(prefix), prefix, True
        if used is not None and moved is None:
            self.store.touch(used)
        for length, entry in walk.prefixes:  # shorter entries on the way (the system prefix) were used too
            if length < reused and entry is not used:
                self.store.touch(entry)
        if cache is None:
            cache = self._make()

        note = "miss" if reused == 0 else ("hit" if whole else "partial")
        extra: dict[str, Any] = {"reused_tokens": reused}
        if used is not None:
            extra["cache_entry"] = used.tier.label
        if walk.matched > reused or note == "partial":
            extra.update(self._divergence(prompt, walk.matched))
        if reused == 0:
            extra["miss_reason"] = self._miss_reason(walk.matched, extra, chat.session_id)
        self.store.record(chat.session_id, len(tokens), reused, note)

        lease = Lease(cache=cache, reused=reused, offset=reused, note=note, extra=extra, tokens=tokens,
                      system_end=prompt.system_end, session=chat.session_id, side=side, moved=moved,
                      anchor=bool(chat.messages) and chat.messages[-1].get("role") == "user")
        if progress is not None:
            progress.begin_prefill(len(tokens), reused)
        if not self.trimmable and prefill:
            self._prefill_checkpoints(lease, prompt, cancel, progress)
        return lease

    def finish(self, lease: Lease) -> None:
        """Store what the generation left (trimmable caches); called once, also after a cancel."""
        if not self.trimmable:
            return
        held = kv.cache_length(lease.cache) or 0
        done = min(held, len(lease.tokens))  # held counts generated tokens too
        end = lease.system_end
        if not lease.side and end and end <= done and not self._promoted(lease.tokens[:end]):
            snapshot = kv.compact_prefix(lease.cache, end)
            if snapshot is not None:
                self._store(lease.tokens[:end], snapshot, Tier.SYSTEM, None, lease)
        if done <= 0 or not kv.trim_to(lease.cache, done):
            return
        existing = self.store.get(lease.tokens[:done])
        if existing is not None:
            self.store.touch(existing)
            return
        tier = Tier.SIDE if lease.side else Tier.TURN
        self._store(lease.tokens[:done], lease.cache, tier, None if lease.side else lease.session, lease)

    # --- checkpoints for caches that cannot be cut back ----------------------------------------------

    def checkpoints(self, lease: Lease, prompt: RenderedPrompt) -> list[tuple[int, Tier]]:
        """Where a prefill from `lease.offset` should stop to store a snapshot, in order, with the tier each goes to.

        Caches that cannot be cut back: the end of the system+tools prefix, a think tail, and the prompt less
        its last token (generation needs that token's logits). Trimmable caches: only the system+tools prefix
        of a main request (its snapshot is a tight copy; everything else is cut back from the final cache).
        """
        tokens, limit = lease.tokens, len(lease.tokens) - 1
        points: dict[int, Tier] = {}
        end = prompt.system_end
        if self.trimmable:
            if not lease.side and end and not self._promoted(tokens[:end]):
                points[end] = Tier.SYSTEM
        else:
            tier = Tier.SIDE if lease.side else Tier.TURN
            if end and lease.side:  # a side request's own system prompt (a title's): SIDE tier
                if self.store.get(tokens[:end]) is None:
                    points[end] = Tier.SIDE
            elif end and not self._promoted(tokens[:end]):
                points[end] = Tier.SYSTEM
            tail = self._think_tail(prompt)
            if tail is not None:
                points.setdefault(tail, tier)
            points.setdefault(limit, tier)
        return [(point, points[point]) for point in sorted(points) if lease.offset < point <= limit]

    def store_checkpoint(self, lease: Lease, point: int, tier: Tier, snapshot: list[Any]) -> None:
        """Keep `snapshot`, a cache holding exactly the first `point` prompt tokens (a copy the caller gives up)."""
        tokens = lease.tokens[:point]
        if self.store.get(tokens) is not None:
            return
        session = None if tier == Tier.SYSTEM or lease.side else lease.session
        self._store(tokens, snapshot, tier, session, lease)

    def _prefill_checkpoints(self, lease: Lease, prompt: RenderedPrompt, cancel: Optional[threading.Event],
                             progress: Optional[GenerationProgress] = None) -> None:
        tokens = lease.tokens
        for point, tier in self.checkpoints(lease, prompt):
            step = point - lease.offset
            done = kv.prefill(self.model, lease.cache, tokens[lease.offset:point], step=self.prefill_step_size,
                              cancel=cancel, progress=_advance(progress, lease.offset - lease.reused))
            lease.offset += done
            if done < step:
                return  # cancelled: generation will notice the same event and stop
            self.store_checkpoint(lease, point, tier, kv.clone(lease.cache))

    def _think_tail(self, prompt: RenderedPrompt) -> Optional[int]:
        """Where a <think> opened by the generation prompt starts (open, or closed as in `<think></think>` when
        thinking is off): the next turn may render that assistant turn without it."""
        finder = getattr(self.tokenizer, "rfind_think_start", None)
        if finder is None or not getattr(self.tokenizer, "has_thinking", False):
            return None
        index = finder(prompt.tokens, start=len(prompt.tokens) - THINK_TAIL)
        return index if index > 0 else None

    # --- storing and persistence ---------------------------------------------------------------------

    def _promoted(self, tokens: list[int]) -> bool:
        """Whether a SYSTEM entry exists for these tokens, raising one a side request stored (False: none)."""
        entry = self.store.get(tokens)
        if entry is None:
            return False
        if self.store.promote(entry, Tier.SYSTEM) and self.disk is not None:
            kv.evaluate(entry.payload)
            self.disk.save_async(tokens, entry.payload)
        return True

    def _store(self, tokens: list[int], payload: list[Any], tier: Tier, session: Optional[str],
               lease: Optional[Lease]) -> Optional[Entry]:
        entry = self.store.insert(tokens, payload, kv.cache_nbytes(payload), tier, session=session,
                                  trimmable=self.trimmable, anchor=lease is not None and lease.anchor)
        if entry is None:
            return None
        if lease is not None:
            lease.stored.append(len(tokens))
        if tier == Tier.SYSTEM and self.disk is not None:
            kv.evaluate(payload)
            self.disk.save_async(tokens, payload)
        return entry

    def _load_from_disk(self) -> None:
        assert self.disk is not None
        for tokens, payload in reversed(self.disk.load()):  # oldest first, so the newest is the most recent in LRU
            if self.store.get(tokens) is None:
                self.store.insert(tokens, payload, kv.cache_nbytes(payload), Tier.SYSTEM, trimmable=self.trimmable)

    def flush(self) -> None:
        if self.disk is not None:
            self.disk.flush()

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()

    def clear(self) -> None:
        self.store.clear()

    # --- facts and diagnostics -----------------------------------------------------------------------

    def facts(self) -> dict[str, Any]:
        facts = self.store.facts()
        facts["trimmable"] = self.trimmable
        facts["max_bytes_source"] = "auto" if self.auto_max_bytes else "setting"
        if self.disk is not None:
            facts["disk"] = {"directory": str(self.disk.directory), "loaded": self.disk.loaded,
                             "saved": self.disk.saved, "corrupt": self.disk.corrupt,
                             "errors": self.disk.errors[-3:]}
        return facts

    def _miss_reason(self, matched: int, extra: dict[str, Any], session: Optional[str]) -> str:
        if len(self.store) == 0:
            reason = "no entry"
        elif matched == 0:
            reason = "no entry shares a prefix"
        else:
            reason = f"diverged at token {matched}"
            if "diverged_message" in extra:
                reason += f" (message {extra['diverged_message']}, {extra.get('diverged_role')})"
            if not self.trimmable:
                reason += "; the cache cannot be cut back and no checkpoint lies before it"
        evicted = self.store.sessions[session].evicted if session in self.store.sessions else 0
        if evicted:
            reason += f"; {evicted} of this session's entries were evicted (byte cap)"
        return reason

    def _divergence(self, prompt: RenderedPrompt, token_index: int) -> dict[str, Any]:
        found: dict[str, Any] = {"diverged_at": token_index}
        if self.tokenizer is None or not prompt.message_offsets or token_index >= len(prompt.tokens):
            return found
        try:
            char = len(self.tokenizer.decode(prompt.tokens[:token_index]))
        except Exception:
            return found
        index = message_at(prompt.message_offsets, char)
        if index is None:
            found["diverged_message"] = "template header"
        else:
            found["diverged_message"] = index
            if index < len(prompt.message_roles):
                found["diverged_role"] = prompt.message_roles[index]
        return found


def _advance(progress: Optional[GenerationProgress], start: int):
    """kv.prefill's per-chunk callback moving `progress` on from `start` new tokens (None without progress)."""
    if progress is None:
        return None
    done = start

    def on_chunk(count: int) -> None:
        nonlocal done
        done += count
        progress.prefilled(done)

    return on_chunk
