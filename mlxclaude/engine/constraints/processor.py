"""The per-request logits processor: watches for calls, constrains them, forbids or forces them.

mlx-lm calls `processor(tokens, logits)` once per sampled token (the batched engine asks
`allowed(newest)` instead, engine/constraints/batched_step.py), with `tokens` ending in the token sampled
just before — still lazy, since mlx-lm queues step j before step j-1's token reaches the CPU. Reading it
(`.item()`) would stall that pipeline, so while the reply is free text the processor only schedules it
(`mx.async_eval`) and reads it one step later, when it is ready; the one unknown token is covered on the
device: if it is a token that completes an open marker exactly (`<tool_call>` as one token), the call's
first-token mask applies (`mx.where`, no sync). Only when an overshooting completer is possible (text
ending in `<tool_call` and a token `>\\n` exists), inside a call, or under `tool_choice: none`, does the
processor read the newest token at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Callable, Optional

import numpy as np

from mlxclaude.engine.constraints.markers import JsonPosition, MarkerWatch, TokenTexts


class State(Enum):
    WATCH = auto()
    CALL = auto()
    EOS_ONLY = auto()
    FORBID = auto()
    OFF = auto()


@dataclass
class Compiled:
    """A grammar compiled for one model: a pristine matcher to copy and its first-token mask."""

    matcher: Any  # llguidance.LLMatcher
    first_mask: Optional[np.ndarray] = None

    def start(self) -> Any:
        return self.matcher.deep_copy()


@dataclass
class Vocabulary:
    """What a processor needs from the model: token texts, llguidance tokenizer, end-of-reply ids."""

    texts: TokenTexts
    tokenize_bytes: Callable[[bytes], list[int]]
    eos_ids: tuple[int, ...]
    size: int  # llguidance's vocabulary size (the mask length)


def mask_of(matcher: Any, size: int) -> np.ndarray:
    data = np.frombuffer(matcher.compute_logit_bias(), dtype=np.uint8)
    mask = data[:size] != 0
    return mask


class ConstraintProcessor:
    def __init__(self, vocab: Vocabulary, *, state: State, markers: list[bytes],
                 grammars: list[Optional[Compiled]], forced: Optional[Compiled] = None,
                 more: Optional[Compiled] = None,
                 single_call: bool = False, think_open: Optional[bytes] = None,
                 think_close: Optional[bytes] = None, thinking: bool = False, max_tokens: Optional[int] = None,
                 on_event: Callable[..., None] = lambda *a, **k: None) -> None:
        self.vocab = vocab
        self.state = state
        self.grammars = grammars
        self.more = more  # after a call: blank space and further calls only
        self._in_more = False
        self.single_call = single_call
        self.watch = MarkerWatch(markers, think_open=think_open, think_close=think_close, thinking=thinking)
        self._may_begin = vocab.texts.holding(self.watch.first)  # tokens holding a byte a marker or a tag begins with
        self.matcher: Any = forced.start() if forced is not None else None
        self.position = JsonPosition()
        self.calls_opened = 0
        self.constrained_tokens = 0
        self.wrapped_up = False
        self.max_tokens = max_tokens
        self.reserve = wrap_up_reserve(max_tokens)
        self._pending: list[Any] = []
        self._told = 0  # the logits' width while the batched step owes the newest token (`tell`)
        self._steps = 0
        self._on_event = on_event
        self._masks: dict[Any, Any] = {}  # cached device masks by key and logits width
        self._overshoot_at_rest: Optional[bool] = None

    # --- mlx-lm's entry point ----------------------------------------------------------------------

    def __call__(self, tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        allowed = self.allowed(tokens[-1], logits.shape[-1])
        return logits if allowed is None else mx.where(allowed, logits, -mx.inf)

    def allowed(self, newest: Any, width: int, *, told: bool = False) -> Optional[Any]:
        """The tokens allowed next, as a (width,) bool device array; None: any token. `newest` is the token
        sampled just before (lazy; at the first call, the prompt's last token, not the reply's). One call per
        sampled token, as mlx-lm's processor call: the batched step (engine/constraints/batched_step.py) asks
        every constrained row of the batch and applies the masks as one operation.

        `told`: the caller reads the newest token itself later in the step and hands it over (`tell`), so the
        processor schedules no read of its own; in free text it then asks for no mask at all, where it would
        otherwise build one on the device that holds only if the newest token completes a tool-call marker:
        `tell` says so once the token is known, and the caller draws the next token again under its mask."""
        if self.state is State.OFF:
            return None
        try:
            known = True
            if self._steps:
                self._drain()
                if self._wants_newest():
                    self._take(int(newest.item()))
                elif told:
                    self._told = width
                else:
                    import mlx.core as mx

                    mx.async_eval(newest)
                    self._pending.append(newest)
                    known = False
            else:
                newest = None
            self._steps += 1
            return self._allowed(width, newest, known)
        except Exception as exc:  # never let a constraint take the reply down: decode freely from here
            self._fail(exc)
            return None

    def pass_told(self, width: int) -> bool:
        """The batched step's shortcut for the usual step: in free text, with no part of a marker open and no token
        that could overshoot one, `allowed(newest, width, told=True)` would read nothing and ask for no mask. Then
        this takes that step (True), so the caller need not even slice the row's newest token; False: call
        `allowed`."""
        if (self.state is not State.WATCH or not self._steps or self._pending or self.watch.thinking
                or not self.watch.at_rest or self._overshoot_at_rest is not False):
            return False
        self._told = width
        self._steps += 1
        return True

    def tell(self, token: int) -> Optional[Any]:
        """The newest token as the batched step read it, when `allowed(told=True)` left it unknown. If it
        opened a tool call, the token sampled after it (with no mask: this one was not known then) must be drawn
        again under the mask this returns; None: it stands."""
        width, self._told = self._told, 0
        if not width:
            return None
        try:
            before = self.state
            self._take(token)
            return None if self.state is before else self._allowed(width, None, True)
        except Exception as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: Exception) -> None:
        self.state = State.OFF
        self._on_event("constraint_failed", error=f"{type(exc).__name__}: {exc}")

    # --- following the text ------------------------------------------------------------------------

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for token in pending:
            self._take(int(token.item()))

    def _wants_newest(self) -> bool:
        if self.state in (State.CALL, State.FORBID):
            return True
        if self.state is State.WATCH and not self.watch.thinking:
            if self.watch.at_rest:  # the usual case, asked at every step: the same answer each time
                if self._overshoot_at_rest is None:
                    self._overshoot_at_rest = self._overshoot()
                return self._overshoot_at_rest
            return self._overshoot()
        return False

    def _overshoot(self) -> bool:
        """Whether a token could complete a marker and run past it, from where the text is."""
        return any(self._completers(i).overshoot for i, g in enumerate(self.grammars) if g is not None)

    def _completers(self, index: int):
        marker = self.watch.markers[index]
        return self.vocab.texts.completers(marker, self.watch.matched(index))

    def _take(self, token: int) -> None:
        state = self.state
        if state is State.WATCH:
            if token not in self._may_begin and self.watch.at_rest:
                return  # the usual token: no byte a marker or a tag begins with, and none is open
            opened = self.watch.feed(self.vocab.texts.text(token))
            if opened is not None:
                self._open(*opened)
        elif state is State.CALL:
            self.constrained_tokens += 1
            if token in self.vocab.eos_ids:
                return
            self.position.feed(self.vocab.texts.text(token))
            if not self.matcher.consume_token(token):
                self._abandon(self.matcher.get_error())
            elif self.matcher.is_stopped():
                self._call_done()
        elif state is State.FORBID:
            self.watch.feed(self.vocab.texts.text(token))

    def _open(self, index: int, overshoot: bytes) -> None:
        compiled = self.grammars[index] if index < len(self.grammars) else None
        if compiled is None:
            self.watch.reset()  # a marker without a grammar: its call is left to the parser
            return
        self.calls_opened += 1
        self.matcher = compiled.start()
        self.state = State.CALL
        self.position = JsonPosition()
        self.position.feed(overshoot)
        if overshoot and not self.matcher.consume_tokens(self.vocab.tokenize_bytes(overshoot)):
            self._abandon(self.matcher.get_error())
        elif self.matcher.is_stopped():
            self._call_done()

    def _call_done(self) -> None:
        """A call (or the reply's JSON) is complete: end the reply, or allow further calls and no text."""
        self.matcher = None
        if self.single_call or self.more is None or self._in_more:
            self.state = State.EOS_ONLY
        else:
            self._in_more = True
            self.matcher = self.more.start()

    def _abandon(self, reason: str) -> None:
        self._on_event("constraint_abandoned", reason=str(reason)[:300])
        self.matcher = None
        self.state = State.WATCH if any(g is not None for g in self.grammars) else State.OFF
        self.watch.reset()

    # --- masks -------------------------------------------------------------------------------------

    def _allowed(self, width: int, newest: Any, known: bool) -> Optional[Any]:
        import mlx.core as mx

        if self.state is State.CALL:
            mask = mask_of(self.matcher, self.vocab.size)
            if not mask.any():
                self._abandon("no token allowed")
                return None
            if self._must_wrap_up():
                mask = self._wrap_up(mask)
            return self._device(mask, width)
        if self.state is State.EOS_ONLY:
            return self._eos_mask(width)
        if self.state is State.FORBID:
            banned = self._banned()
            if banned is None:
                return None
            return self._cached_device(("allow", self._forbid_key()), ~banned, width)
        allowed = None
        if self.state is State.WATCH and not known and not self.watch.thinking:
            for index, compiled in enumerate(self.grammars):
                if compiled is None:
                    continue
                exact = self._completers(index).exact
                if not exact:
                    continue
                first = self._cached_device(("first", index), self._first_mask(index, compiled), width)
                hit = mx.any(newest == self._cached_ids(("exact", index, self.watch.matched(index)), exact))
                row = mx.logical_or(mx.logical_not(hit), first)
                allowed = row if allowed is None else mx.logical_and(allowed, row)
        return allowed

    def _must_wrap_up(self) -> bool:
        """Few tokens left: finish the call (close strings, objects…) rather than have it cut off."""
        return self.max_tokens is not None and self.max_tokens - (self._steps - 1) <= self.reserve

    def _wrap_up(self, mask: np.ndarray) -> np.ndarray:
        """The allowed tokens that finish soonest: end-of-reply; inside a string, one closing it;
        outside, one only closing objects or arrays, else one starting a (required) key."""
        texts = self.vocab.texts
        tiers = [self.vocab.eos_ids]
        if self.position.in_string and not self.position.escaped:
            tiers += [texts.quote_closers(), texts.starting(b'"')]
        elif not self.position.in_string:
            tiers += [texts.pure_closers(), texts.starting(b'"'), texts.starting(b"}]")]
        for tier in tiers:
            preferred = np.zeros_like(mask)
            preferred[[t for t in tier if t < len(mask)]] = True
            preferred &= mask
            if preferred.any():
                if not self.wrapped_up:
                    self.wrapped_up = True
                    self._on_event("tool_call_wrapped_up", tokens_left=self.max_tokens - (self._steps - 1),
                                   note="max_tokens is near: the call is being closed early")
                return preferred
        return mask

    def _first_mask(self, index: int, compiled: Compiled) -> np.ndarray:
        if compiled.first_mask is None:
            compiled.first_mask = mask_of(compiled.matcher, self.vocab.size)
        return compiled.first_mask

    def _forbid_key(self) -> tuple[int, ...]:
        return tuple(self.watch.matched(i) for i in range(len(self.watch.markers)))

    def _banned(self) -> Optional[np.ndarray]:
        ids: set[int] = set()
        for index in range(len(self.watch.markers)):
            found = self._completers(index)
            ids.update(found.exact)
            ids.update(found.overshoot)
        if not ids:
            return None
        banned = np.zeros(self.vocab.size, dtype=bool)
        banned[[i for i in ids if i < self.vocab.size]] = True
        return banned

    def _eos_mask(self, width: int) -> Any:
        key = ("eos",)
        if (key, width) not in self._masks:
            mask = np.zeros(max(width, self.vocab.size), dtype=bool)
            mask[list(self.vocab.eos_ids)] = True
            self._masks[(key, width)] = self._device(mask, width)
        return self._masks[(key, width)]

    def _cached_device(self, key: Any, mask: np.ndarray, width: int) -> Any:
        if (key, width) not in self._masks:
            self._masks[(key, width)] = self._device(mask, width)
        return self._masks[(key, width)]

    def _cached_ids(self, key: Any, ids: tuple[int, ...]) -> Any:
        import mlx.core as mx

        if key not in self._masks:
            self._masks[key] = mx.array(list(ids), dtype=mx.int32)
        return self._masks[key]

    @staticmethod
    def _device(mask: np.ndarray, width: int) -> Any:
        """A (width,) bool array: the mask, cut or padded with False to the logits' width."""
        import mlx.core as mx

        if len(mask) != width:
            padded = np.zeros(width, dtype=bool)
            n = min(width, len(mask))
            padded[:n] = mask[:n]
            mask = padded
        return mx.array(mask)

    def summary(self) -> dict[str, Any]:
        return {"constraint_calls": self.calls_opened, "constrained_tokens": self.constrained_tokens,
                "wrapped_up": self.wrapped_up}


def wrap_up_reserve(max_tokens: Optional[int]) -> int:
    """How many tokens before max_tokens a call in progress starts being closed: a third, 8 to 64."""
    if not max_tokens:
        return 0
    return max(8, min(64, max_tokens // 3))
