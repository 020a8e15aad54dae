"""Chats and a request runner shared by the prompt-cache tests (tiny real model)."""

from __future__ import annotations

import threading

from mlxclaude.engine.cache.prompt_cache import PromptCache
from mlxclaude.engine.render import render_chat
from mlxclaude.protocol.chat import ChatRequest

TOOLS = [{"type": "function", "function": {"name": "Bash", "description": "Run a shell command in the project.",
                                           "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                                                          "required": ["command"]}}}]
SYSTEM = {"role": "system", "content": "You are a coding agent. Work in small steps and explain what you run."}


def chat(*messages, session="s1", kind="main", tools=TOOLS) -> ChatRequest:
    return ChatRequest(model="m", messages=[SYSTEM, *messages], tools=tools, session_id=session, kind=kind)


def user(text):
    return {"role": "user", "content": text}


def call(command, call_id="c1"):
    return {"role": "assistant", "content": "Running it.",
            "tool_calls": [{"type": "function", "id": call_id, "function": {"name": "Bash", "arguments": {"command": command}}}]}


def result(text, call_id="c1"):
    return {"role": "tool", "tool_call_id": call_id, "name": "Bash", "content": text}


def last_logits(model, cache, tokens):
    import mlx.core as mx

    return model(mx.array(tokens)[None], cache=cache)[0, -1]


def fresh_logits(model, tokens):
    from mlx_lm.models.cache import make_prompt_cache

    return last_logits(model, make_prompt_cache(model), tokens)


def run(cache: PromptCache, model, tokenizer, request: ChatRequest, *, generated: int = 3):
    """One request: lease, prefill the rest (checking the logits), pretend to generate, finish."""
    import mlx.core as mx

    prompt = render_chat(tokenizer, request, None, None)
    lease = cache.begin(prompt, request, threading.Event())
    logits = last_logits(model, lease.cache, prompt.tokens[lease.offset:])
    assert mx.allclose(logits, fresh_logits(model, prompt.tokens), atol=1e-4).item(), "reused cache changed the logits"
    if generated:
        last_logits(model, lease.cache, [5] * generated)  # generated tokens land in the cache, as in generate_step
    cache.finish(lease)
    return prompt, lease


def conversation(session="s1", opening="list the files here"):
    first = [user(opening)]
    second = first + [call("ls -la"), result("a.txt\nb.txt")]
    third = second + [{"role": "assistant", "content": "There are two files."}, user("now count the lines in a.txt")]
    return [chat(*first, session=session), chat(*second, session=session), chat(*third, session=session)]
