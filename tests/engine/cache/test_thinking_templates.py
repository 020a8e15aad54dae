"""Templates that drop past reasoning (Qwen3 style): the cache still reuses everything before the change.

A Qwen3-style template renders an assistant turn's reasoning only after the last user message, and its
generation prompt ends with an empty `<think></think>` when thinking is off. So a turn's rendered prompt is
not always a prefix of the next one: the previous prompt's end is (trimmable caches cut back to it), and
for caches that cannot be cut back the checkpoints before the generation prompt's <think> and at each
prompt's end still hit.
"""

from __future__ import annotations

import threading

import pytest

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.engine.cache.prompt_cache import PromptCache
from mlxclaude.protocol.chat import ChatRequest
from support.chats import call, result, user

pytestmark = pytest.mark.mlx

QWEN3_STYLE = (
    "{%- set ns = namespace(last_query=-1) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_query = loop.index0 %}{%- endif %}{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'system' or m.role == 'user' %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if loop.index0 > ns.last_query and m.reasoning_content %}"
    "{{- '<think>\\n' + m.reasoning_content + '\\n</think>\\n\\n' }}{%- endif %}"
    "{{- m.content }}{%- for c in m.tool_calls or [] %}{{- '\\n<tool_call>\\n' + c.function.name + '\\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif m.role == 'tool' %}{{- '<|im_start|>user\\n<tool_response>\\n' + m.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
SYSTEM = {"role": "system", "content": "You are a coding agent."}


def turns():
    thought = {**call("ls"), "reasoning_content": "I should look at the files first."}
    first = [SYSTEM, user("what is in here?")]
    second = first + [thought, result("a.txt")]
    third = second + [{"role": "assistant", "content": "One file: a.txt."}, user("and its size?")]
    return [first, second, third]


def render(tokenizer, messages, thinking: bool) -> RenderedPrompt:
    text = tokenizer._tokenizer.apply_chat_template(messages, chat_template=QWEN3_STYLE, tokenize=False,
                                                   add_generation_prompt=True, enable_thinking=thinking)
    return RenderedPrompt(text=text, tokens=list(tokenizer.encode(text, add_special_tokens=False)))


def replay(cache: PromptCache, model, tokenizer, thinking: bool):
    import mlx.core as mx

    prompts, leases = [], []
    for messages in turns():
        prompt = render(tokenizer, messages, thinking)
        request = ChatRequest(model="m", messages=messages, session_id="s", kind="main")
        lease = cache.begin(prompt, request, threading.Event())
        model(mx.array(prompt.tokens[lease.offset:])[None], cache=lease.cache)
        cache.finish(lease)
        prompts.append(prompt.tokens)
        leases.append(lease)
    return prompts, leases


def starts_with(tokens, prefix) -> bool:
    return tokens[:len(prefix)] == prefix


@pytest.mark.parametrize("thinking", [True, False])
def test_the_template_really_rewrites_history(tiny_model, thinking):
    _, tokenizer = tiny_model
    first, second, third = [render(tokenizer, messages, thinking).tokens for messages in turns()]
    assert not starts_with(third, second)  # the reasoning of the tool-call turn is gone once a user speaks
    assert starts_with(third, first) == thinking  # with thinking off, the generation prompt's <think></think> is not


@pytest.mark.parametrize("thinking", [True, False])
def test_trimmable_caches_reuse_up_to_the_rewrite(tiny_model, thinking):
    model, tokenizer = tiny_model
    prompts, leases = replay(PromptCache(model, tokenizer, max_bytes=1 << 30), model, tokenizer, thinking)
    for index in (1, 2):
        lcp = max(sum(1 for _ in iter_common(prompts[index], earlier)) for earlier in prompts[:index])
        assert leases[index].reused == min(lcp, len(prompts[index]) - 1)
    assert leases[2].reused > len(prompts[0]) - 8


def iter_common(a, b):
    for x, y in zip(a, b):
        if x != y:
            return
        yield x


def test_untrimmable_caches_hit_at_the_think_tail_checkpoint(tiny_model_dir):
    from mlx_lm import load
    from mlx_lm.models.cache import RotatingKVCache

    model, tokenizer = load(str(tiny_model_dir))
    assert tokenizer.has_thinking
    model.make_cache = lambda: [RotatingKVCache(max_size=4096) for _ in model.layers]
    prompts, leases = replay(PromptCache(model, tokenizer, max_bytes=1 << 30), model, tokenizer, thinking=False)
    think_at = len(prompts[0]) - len(tokenizer.encode("<think>\n\n</think>\n\n", add_special_tokens=False))
    assert think_at in leases[0].stored
    assert leases[1].reused == think_at  # the tool-call turn renders without the empty think block
    assert leases[2].reused >= think_at
