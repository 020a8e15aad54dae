"""Per-model constraint state: the llguidance tokenizer (built once, at load), token texts, compiled
grammars; `processors(chat, prompt)` builds a request's logits processor on the worker thread."""

from __future__ import annotations

import threading
from collections import OrderedDict
from copy import copy
from typing import Any, Optional

from mlxclaude.engine.backend import ModelInfo, RenderedPrompt
from mlxclaude.engine.constraints.grammar import call_grammar, constrained_markers, json_output_grammar
from mlxclaude.engine.constraints.markers import TokenTexts
from mlxclaude.engine.constraints.plan import ConstraintPlan, plan_for
from mlxclaude.engine.constraints.processor import Compiled, ConstraintProcessor, State, Vocabulary
from mlxclaude.engine.constraints.schemas import SchemaChecker
from mlxclaude.protocol.chat import ChatRequest

# Marker texts that may be single special tokens (then grammars reference them by id).
SPECIAL_CANDIDATES = ("<|constrain|>", "<|message|>", "<|call|>", "<|channel|>", "[ARGS]", "[TOOL_CALLS]",
                      "<|python_tag|>")
GRAMMAR_CACHE = 64

_warned: set[str] = set()


def _event(event: str, **fields: Any) -> None:
    from mlxclaude.logs import log_event

    log_event(event, level="info" if event == "tool_call_wrapped_up" else "warning", **fields)


class ModelConstraints:
    """Everything about constrained decoding that depends only on the model; `enabled` switches it."""

    def __init__(self, tokenizer: Any, info: ModelInfo, *, enabled: bool = True) -> None:
        import llguidance

        self.enabled = enabled
        self.info = info
        self.format = info.tool_format
        hf = getattr(tokenizer, "_tokenizer", tokenizer)
        backend = copy(hf.backend_tokenizer)
        backend.no_padding()
        backend.no_truncation()
        eos = sorted(set(getattr(tokenizer, "eos_token_ids", None) or [hf.eos_token_id]))
        self.lltok = llguidance.LLTokenizer(backend.to_str(), eos_token=eos)
        self.eos_ids = tuple(eos)
        size = self.lltok.vocab_size
        texts = TokenTexts([self.lltok.decode_bytes([token]) for token in range(size)])
        self.vocab = Vocabulary(texts=texts, tokenize_bytes=self.lltok.tokenize_bytes, eos_ids=self.eos_ids,
                                size=size)
        self.specials = self._specials(hf)
        self.schemas = SchemaChecker()
        self._compiled: OrderedDict[str, Optional[Compiled]] = OrderedDict()
        self._lock = threading.Lock()
        for marker in self._markers():
            texts.completers(marker, 0)  # index the vocabulary now, not on the first request

    # --- load-time facts ---------------------------------------------------------------------------

    def _marker_texts(self) -> list[str]:
        texts = list(SPECIAL_CANDIDATES)
        if self.format is not None:
            for marker in self.format.markers:
                texts += [marker.open, marker.close]
        texts += [self.info.think_open or "", self.info.think_close or ""]
        return [text for text in dict.fromkeys(texts) if text]

    def _specials(self, hf: Any) -> dict[str, int]:
        specials = {}
        for text in self._marker_texts():
            try:
                ids = list(hf.encode(text, add_special_tokens=False))
            except Exception:
                continue
            if len(ids) == 1 and self.lltok.is_special_token(ids[0]) and self.lltok.decode_bytes(ids) == text.encode():
                specials[text] = ids[0]
        return specials

    def _markers(self) -> list[bytes]:
        if self.format is None:
            return []
        return [marker.open.encode() for marker in self.format.markers]

    # --- grammars ----------------------------------------------------------------------------------

    def compile(self, grammar: Optional[str]) -> Optional[Compiled]:
        """The compiled grammar (cached); None, logged once, when llguidance rejects it."""
        if grammar is None:
            return None
        import llguidance

        with self._lock:
            if grammar in self._compiled:
                self._compiled.move_to_end(grammar)
                return self._compiled[grammar]
        matcher = llguidance.LLMatcher(self.lltok, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        compiled = None if matcher.is_error() else Compiled(matcher)
        if compiled is None:
            error = matcher.get_error()
            if error not in _warned:
                _warned.add(error)
                _event("tool_grammar_rejected", error=error[:500], note="calls stay unconstrained")
        with self._lock:
            self._compiled[grammar] = compiled
            while len(self._compiled) > GRAMMAR_CACHE:
                self._compiled.popitem(last=False)
        return compiled

    # --- per request -------------------------------------------------------------------------------

    def plan(self, chat: ChatRequest, prompt: RenderedPrompt) -> ConstraintPlan:
        return plan_for(chat, has_tool_format=self.format is not None, starts_in_thinking=prompt.starts_in_thinking)

    def processor(self, chat: ChatRequest, prompt: RenderedPrompt,
                  max_tokens: Optional[int] = None) -> Optional[ConstraintProcessor]:
        """The request's processor, or None when nothing is to be constrained (then it costs nothing)."""
        if not self.enabled:
            return None
        plan = self.plan(chat, prompt)
        if plan.mode == "off":
            return None
        think_open = (self.info.think_open or "").encode() or None
        think_close_text = self.info.think_close if plan.close_thinking else None
        common = dict(think_open=think_open, think_close=(self.info.think_close or "").encode() or None,
                      thinking=prompt.starts_in_thinking, on_event=_event, max_tokens=max_tokens)
        if plan.mode == "json":
            spec = self.schemas.output_schema(chat.json_schema)
            forced = self.compile(json_output_grammar(spec.schema, lenient=spec.lenient,
                                                      think_close=think_close_text, specials=self.specials))
            if forced is None:
                return None
            return ConstraintProcessor(self.vocab, state=State.CALL, markers=[], grammars=[], forced=forced,
                                       single_call=True, **common)
        fmt = self.format
        assert fmt is not None
        markers = fmt.markers
        if plan.mode == "forbid":
            return ConstraintProcessor(self.vocab, state=State.FORBID, markers=self._markers(), grammars=[],
                                       on_event=_event, max_tokens=max_tokens)
        specs = self.schemas.specs(chat.tools)
        constrained = set(constrained_markers(fmt.name, [m.open for m in markers]))
        grammars = [self.compile(call_grammar(fmt.name, m.open, m.close, specs, specials=self.specials))
                    if i in constrained else None for i, m in enumerate(markers)]
        if not constrained:
            return None
        main = markers[min(constrained)]  # forced calls and further calls use the first constrained marker
        forced_specs = self.schemas.specs(chat.tools, only=plan.only_tool) if plan.only_tool else specs
        more = None if plan.single_call else self.compile(  # tool_choice "tool": further calls to it only
            call_grammar(fmt.name, main.open, main.close, forced_specs, specials=self.specials, start="more"))
        if plan.mode == "watch":
            return ConstraintProcessor(self.vocab, state=State.WATCH, markers=self._markers(), grammars=grammars,
                                       more=more, single_call=plan.single_call, **common)
        forced = self.compile(call_grammar(fmt.name, main.open, main.close, forced_specs, specials=self.specials,
                                           start="forced", think_close=think_close_text))
        if forced is None:
            return None
        return ConstraintProcessor(self.vocab, state=State.CALL, markers=self._markers(), grammars=grammars,
                                   forced=forced, more=more, single_call=plan.single_call, **common)


def load_constraints(tokenizer: Any, info: ModelInfo, *, enabled: bool = True) -> Optional[ModelConstraints]:
    """ModelConstraints for a loaded model, or None (logged) when the grammar engine can't serve it."""
    try:
        return ModelConstraints(tokenizer, info, enabled=enabled)
    except Exception as exc:  # no llguidance, or a tokenizer it can't read: decode unconstrained
        _event("tool_constraints_unavailable", error=f"{type(exc).__name__}: {exc}"[:300],
               note="tool calls and JSON replies are not constrained")
        return None


def constraint_processors(constraints: Optional[ModelConstraints], chat: ChatRequest, prompt: RenderedPrompt,
                          max_tokens: Optional[int] = None) -> Optional[list]:
    """The `logits_processors` for mlx-lm's generate_step (None: nothing to constrain)."""
    if constraints is None:
        return None
    processor = constraints.processor(chat, prompt, max_tokens)
    return [processor] if processor is not None else None
