"""The logits processor driven by hand (tiny model's tokenizer): the one-step-late watch and its guard."""

from __future__ import annotations

import numpy as np
import pytest

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.protocol.chat import ChatRequest, ToolChoice

pytestmark = pytest.mark.mlx
TOOLS = [{"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]


@pytest.fixture(scope="module")
def constraints(tiny_model_dir):
    from mlxclaude.engine.constraints import load_constraints
    from mlxclaude.engine.loader import load_model

    loaded = load_model(str(tiny_model_dir))
    return load_constraints(loaded.tokenizer, loaded.info), loaded.tokenizer


def processor(constraints, choice=ToolChoice(), max_tokens=200):
    model, _ = constraints
    chat = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice=choice)
    return model.processor(chat, RenderedPrompt(text="", tokens=[1, 2]), max_tokens)


def allowed(out) -> np.ndarray:
    return np.isfinite(np.array(out[0]))


def ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def test_watch_masks_the_token_after_a_one_token_open_marker_without_reading_it(constraints):
    import mlx.core as mx

    model, tokenizer = constraints
    proc = processor(constraints)
    size = model.vocab.size
    logits = mx.zeros((1, size))
    prompt = [1, 2, 3]
    assert allowed(proc(mx.array(prompt), logits)).all()  # step 0: nothing known, nothing to do
    hello = ids(tokenizer, "Hello")
    out = allowed(proc(mx.array(prompt + hello[:1]), logits))  # newest (unknown yet) is not a marker
    assert out.all()
    open_id = model.specials["<tool_call>"]
    guarded = allowed(proc(mx.array(prompt + hello[:1] + [open_id]), logits))
    assert not guarded.all() and guarded.any()  # the call's first-token mask, applied lazily
    assert not guarded[ids(tokenizer, "Sure")[0]]
    brace = ids(tokenizer, "{")[0]
    assert guarded[brace] or guarded[ids(tokenizer, "\n")[0]]
    first = brace if guarded[brace] else ids(tokenizer, "\n")[0]
    after = allowed(proc(mx.array(prompt + hello[:1] + [open_id, first]), logits))
    assert proc.state.name == "CALL" and proc.calls_opened == 1
    assert after.sum() < size // 2


def test_forbid_bans_the_open_marker_everywhere(constraints):
    import mlx.core as mx

    model, tokenizer = constraints
    proc = processor(constraints, ToolChoice("none"))
    logits = mx.zeros((1, model.vocab.size))
    open_id = model.specials["<tool_call>"]
    for step in range(3):
        out = allowed(proc(mx.array([1, 2, 3] + ids(tokenizer, "ok")[:step]), logits))
        assert not out[open_id] and out.sum() >= model.vocab.size - 5


def test_forced_call_then_end_of_reply(constraints):
    import mlx.core as mx

    model, tokenizer = constraints
    proc = processor(constraints, ToolChoice("tool", "Bash", disable_parallel_tool_use=True))
    logits = mx.zeros((1, model.vocab.size))
    first = allowed(proc(mx.array([1, 2]), logits))
    assert np.flatnonzero(first).tolist() == [model.specials["<tool_call>"]]
    text = '\n{"name": "Bash", "arguments": {"command": "ls"}}\n'
    sequence = [model.specials["<tool_call>"]] + model.lltok.tokenize_str(text) + [model.specials["</tool_call>"]]
    seen = [1, 2]
    for token in sequence:
        seen.append(token)
        out = allowed(proc(mx.array(seen), logits))
    assert sorted(np.flatnonzero(out).tolist()) == sorted(model.eos_ids)


def test_pass_told_takes_the_step_allowed_would_and_declines_wherever_allowed_has_work(constraints):
    """The batched step's shortcut against `allowed(told=True)` on the same tokens: prose, a `<` that could begin a
    marker, the marker itself and the call's body. At each step the processor is asked about the token just fed
    and then told it, as engine/constraints/batched_step.py does. Wherever the shortcut takes a step, the processor
    ends up exactly where `allowed` leaves it; it declines inside the call and while a marker may be open."""
    import mlx.core as mx

    model, tokenizer = constraints
    width = model.vocab.size
    tokens = (ids(tokenizer, "Sure, a < b here.") + [model.specials["<tool_call>"]]
              + ids(tokenizer, '\n{"name": "Bash", "arguments": {"command": "ls"}}'))
    shortcut, reference = processor(constraints), processor(constraints)
    for proc in (shortcut, reference):
        proc.allowed(mx.array(1), width)  # the reply's first token, drawn by mlx-lm's own step
    taken, declined_in_call = 0, 0
    for token in tokens:
        if shortcut.pass_told(width):
            taken += 1
            shortcut_mask = None
        else:
            declined_in_call += shortcut.state.name == "CALL"
            shortcut_mask = shortcut.allowed(mx.array(token), width, told=True)
        reference_mask = reference.allowed(mx.array(token), width, told=True)
        assert (shortcut_mask is None) == (reference_mask is None)
        assert (shortcut._steps, shortcut._told, shortcut.state) == (reference._steps, reference._told, reference.state)
        assert (shortcut.tell(token) is None) == (reference.tell(token) is None)
        assert (shortcut.watch._tail, shortcut.calls_opened) == (reference.watch._tail, reference.calls_opened)
    assert shortcut.calls_opened == 1 and shortcut.state.name == "CALL"
    assert taken >= 3 and declined_in_call >= 10
