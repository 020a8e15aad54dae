"""Prompt-cache strategies replayed on recorded Claude Code traffic: tokens prefilled and wall time.

The traffic (bench/traffic/, recorded by tests/engine/cache/test_claude_code_traffic.py) is two `claude -p`
conversations in their real order: title side request, then main turns with Bash round trips. Every
request is rendered by the model's chat template, then generated (greedy, --max-tokens, so the
prefill dominates) under each strategy, in one run:

  no cache        every prompt prefilled from scratch
  single slot     the previous prompt's cache, cut back to the common prefix (mlxclaude's old PrefixSlot)
  mlx-lm LRU      mlx_lm.models.cache.LRUPromptCache driven as mlx_lm/server.py's _serve_single does it
                  (fetch_nearest_cache, generate, insert_cache of prompt + generated tokens)
  mlxclaude       mlxclaude.engine.cache.PromptCache (begin / finish, as MlxBackend.generate does)
  ideal           an oracle that keeps every prompt and reuses the longest common prefix with any of them
                  (only new tokens prefilled)

Figures are ratios to the ideal; wall time is the best of --rounds replays (the machine may be shared).
--untrimmable replays with a KV cache that refuses to be cut back, as the caches of sliding-window and
SSM/linear-attention hybrids do (mlx-lm's can_trim_prompt_cache is false for them).

    python bench/cache_replay.py [--model DIR] [--traffic FILE] [--max-tokens 8] [--rounds 1]
                                 [--untrimmable] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import lzma
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import _support  # noqa: F401  (sys.path)

TRAFFIC = _support.REPO / "bench" / "traffic" / "claude_session.jsonl"


def read_traffic(path: Path) -> list[dict[str, Any]]:
    raw = lzma.decompress(path.read_bytes()).decode() if path.suffix == ".xz" else path.read_text()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


@dataclass
class Request:
    chat: Any
    prompt: Any  # RenderedPrompt


def prepare(records: list[dict[str, Any]], tokenizer, info) -> list[Request]:
    from mlxclaude.engine.render import render_chat
    from mlxclaude.protocol.kinds import classify
    from mlxclaude.protocol.request import to_chat_request
    from mlxclaude.protocol.wire import parse_create_params

    requests = []
    for record in records:
        chat = to_chat_request(parse_create_params(record["body"]), session_id=record.get("session"))
        chat = replace(chat, kind=classify(chat))
        prompt = render_chat(tokenizer, chat, info.think_open, info.think_close, tool_format=info.tool_format)
        requests.append(Request(chat, prompt))
    return requests


def common(a: list[int], b: list[int]) -> int:
    from mlxclaude.engine.cache.trie import common_prefix_length

    return common_prefix_length(a, b)


def generate(model, cache, tokens: list[int], max_tokens: int, eos: set[int]) -> list[int]:
    """Prefill `tokens` into `cache` and decode greedily; every yielded token is in the cache afterwards."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    out = []
    for token, _ in generate_step(mx.array(tokens), model, max_tokens=max_tokens, prompt_cache=cache):
        out.append(int(token))
        if token in eos:
            break
    return out


# --- strategies: each returns (reused tokens, cache) before and stores after ------------------------------


class NoCache:
    name = "no cache"

    def __init__(self, model, tokenizer) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self.make = lambda: make_prompt_cache(model)

    def run(self, request: Request, generate_rest: Callable) -> int:
        generate_rest(self.make(), request.prompt.tokens)
        return 0


class SingleSlot:
    """mlxclaude's former PrefixSlot: one cache, the previous prompt's, cut back to the common prefix."""

    name = "single slot"

    def __init__(self, model, tokenizer) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self.make = lambda: make_prompt_cache(model)
        self.cache, self.tokens = None, []

    def run(self, request: Request, generate_rest: Callable) -> int:
        from mlxclaude.engine.cache import kv

        tokens = request.prompt.tokens
        cache, reuse = self.make(), 0
        if self.cache is not None:
            reuse = min(common(self.tokens, tokens), len(tokens) - 1)
            if reuse > 0 and kv.trim_to(self.cache, reuse):
                cache = self.cache
            else:
                reuse = 0
        generate_rest(cache, tokens[reuse:])
        if kv.trim_to(cache, len(tokens)):
            self.cache, self.tokens = cache, list(tokens)
        return reuse


class MlxLmLru:
    """LRUPromptCache as mlx_lm/server.py's _serve_single uses it (default size 10, no byte cap)."""

    name = "mlx-lm LRUPromptCache"

    def __init__(self, model, tokenizer, max_size: int = 10) -> None:
        from mlx_lm.models.cache import LRUPromptCache, make_prompt_cache

        self.lru = LRUPromptCache(max_size)
        self.make = lambda: make_prompt_cache(model)
        self.key = ("model", None, None)

    def run(self, request: Request, generate_rest: Callable) -> int:
        tokens = list(request.prompt.tokens)
        cache, rest = self.lru.fetch_nearest_cache(self.key, tokens)
        if cache is None:
            cache = self.make()
        reused = len(tokens) - len(rest)
        generated = generate_rest(cache, rest)
        self.lru.insert_cache(self.key, tokens + generated, cache)
        return reused


class Ours:
    name = "mlxclaude PromptCache"

    def __init__(self, model, tokenizer, max_bytes: Optional[int] = None) -> None:
        from mlxclaude.engine.cache.prompt_cache import PromptCache

        self.cache = PromptCache(model, tokenizer, max_bytes=max_bytes)
        self.notes: list[str] = []

    def run(self, request: Request, generate_rest: Callable) -> int:
        lease = self.cache.begin(request.prompt, request.chat, threading.Event())
        generate_rest(lease.cache, request.prompt.tokens[lease.offset:])
        self.cache.finish(lease)
        self.notes.append(lease.note)
        return lease.reused


class Ideal:
    """Keeps every prompt's cache; reuses the longest common prefix with any earlier prompt.

    With --untrimmable it uses a plain KVCache (same numbers): the ideal does not care whether the cache
    could be cut back. (A real hybrid model given with --model cannot be served so: its row then reuses less.)"""

    name = "ideal (oracle)"
    plain_kv = False

    def __init__(self, model, tokenizer) -> None:
        from mlx_lm.models.cache import KVCache, make_prompt_cache

        self.make = (lambda: [KVCache() for _ in model.layers]) if self.plain_kv else (lambda: make_prompt_cache(model))
        self.kept: list[tuple[list[int], Any]] = []

    def run(self, request: Request, generate_rest: Callable) -> int:
        from mlxclaude.engine.cache import kv

        tokens = request.prompt.tokens
        best, source = 0, None
        for kept_tokens, kept_cache in self.kept:
            shared = min(common(kept_tokens, tokens), len(tokens) - 1)
            if shared > best:
                best, source = shared, kept_cache
        cache = kv.clone_prefix(source, best) if source is not None else None
        if cache is None:
            cache, best = self.make(), 0
        generate_rest(cache, tokens[best:])
        if kv.trim_to(cache, len(tokens)):
            self.kept.append((list(tokens), cache))
        return best


STRATEGIES = (NoCache, SingleSlot, MlxLmLru, Ours, Ideal)
SHORT = {"none": NoCache, "slot": SingleSlot, "lru": MlxLmLru, "ours": Ours, "ideal": Ideal}


def replay(strategy, model, requests: list[Request], max_tokens: int, eos: set[int]) -> dict[str, Any]:
    prefilled = []
    started = time.perf_counter()
    for request in requests:
        def generate_rest(cache, rest):
            return generate(model, cache, list(rest), max_tokens, eos)

        reused = strategy.run(request, generate_rest)
        prefilled.append(len(request.prompt.tokens) - reused)  # checkpoint prefills included
    return {"prefilled": prefilled, "seconds": time.perf_counter() - started}


def make_untrimmable(model) -> None:
    """Give the model a KV cache that reports it cannot be trimmed (same numbers, different contract)."""
    from mlx_lm.models.cache import KVCache

    class UntrimmableKVCache(KVCache):
        def is_trimmable(self) -> bool:
            return False

    model.make_cache = lambda: [UntrimmableKVCache() for _ in model.layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: a tiny random model, 2 layers, built offline)")
    parser.add_argument("--traffic", type=Path, default=TRAFFIC,
                        help="recorded request bodies, .jsonl or .jsonl.xz (default: bench/traffic/claude_session.jsonl)")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="replays per strategy; the best wall time counts")
    parser.add_argument("--untrimmable", action="store_true",
                        help="a cache that cannot be cut back (as sliding-window / SSM hybrid models have)")
    parser.add_argument("--only", default=",".join(SHORT),
                        help="strategies to run, comma-separated from none,slot,lru,ours,ideal (ideal always runs)")
    parser.add_argument("--verbose", action="store_true", help="also print tokens prefilled per request")
    args = parser.parse_args()

    import mlx.core as mx

    from mlxclaude.engine.loader import load_model

    model_dir = _support.bench_model(args.model, num_layers=2, hidden_size=128, num_heads=4)
    loaded = load_model(model_dir)
    model, tokenizer = loaded.model, loaded.tokenizer
    if args.untrimmable:
        make_untrimmable(model)
        Ideal.plain_kv = True
    requests = prepare(read_traffic(args.traffic), tokenizer, loaded.info)
    eos = set(tokenizer.eos_token_ids)
    generate(model, None, requests[0].prompt.tokens[:64], 2, eos)  # warm up
    mx.clear_cache()

    total = sum(len(request.prompt.tokens) for request in requests)
    print(f"model   {model_dir}")
    print(f"traffic {args.traffic.name}: {len(requests)} requests "
          f"({', '.join(request.chat.kind for request in requests)}), {total} prompt tokens; "
          f"max_tokens {args.max_tokens}{'; untrimmable cache' if args.untrimmable else ''}")
    results = {}
    ours_notes: list[str] = []
    for _ in range(args.rounds):
        chosen = {SHORT[name.strip()] for name in args.only.split(",") if name.strip()} | {Ideal}
        for cls in (cls for cls in STRATEGIES if cls in chosen):
            strategy = cls(model, tokenizer)
            result = replay(strategy, model, requests, args.max_tokens, eos)
            best = results.get(cls.name)
            if best is None or result["seconds"] < best["seconds"]:
                results[cls.name] = result
            if isinstance(strategy, Ours):
                ours_notes = strategy.notes
            del strategy
            mx.clear_cache()

    ideal_tokens = sum(len(request.prompt.tokens) - min(len(request.prompt.tokens) - 1, max(
        (common(earlier.prompt.tokens, request.prompt.tokens) for earlier in requests[:index]), default=0))
        for index, request in enumerate(requests))
    ideal_seconds = results[Ideal.name]["seconds"]
    print()
    print(f"{'strategy':<24}{'prefilled':>10}{'x ideal':>9}{'wall s':>9}{'x ideal':>9}")
    for name, result in results.items():
        tokens = sum(result["prefilled"])
        print(f"{name:<24}{tokens:>10}{tokens / ideal_tokens:>9.2f}{result['seconds']:>9.1f}"
              f"{result['seconds'] / ideal_seconds:>9.2f}")
    if args.verbose:
        print()
        print(f"{'request':<14}{'prompt':>8}" + "".join(f"{name.split()[0]:>10}" for name in results)
              + ("   ours" if ours_notes else ""))
        for index, request in enumerate(requests):
            cells = "".join(f"{result['prefilled'][index]:>10}" for result in results.values())
            note = f"   {ours_notes[index]}" if ours_notes else ""
            print(f"{index:>2} {request.chat.kind:<11}{len(request.prompt.tokens):>8}{cells}{note}")


if __name__ == "__main__":
    main()
