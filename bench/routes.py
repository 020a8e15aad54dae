"""What a route costs: the same OpenAI-compatible engine (mlx_lm.server on the tiny model) asked directly and
through mlxclaude's `openai` backend, side by side in one run; and what a dead backend costs a request before
its fallback serves it (first failures, then while it cools down).

    python bench/routes.py [--model DIR] [--requests 20] [--tokens 64]

Figures are medians. mlxclaude runs in this process (uvicorn in a thread), mlx_lm.server in a child process.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib

import _support  # noqa: F401  (sys.path)
import httpx

from mlxclaude.routing.config import parse_routing
from support.live_server import free_port, live_server
from support.mlx_lm_server import MlxLmServer
from support.scripted_backend import ScriptedBackend

TOKEN = "bench"


def timed_stream(url: str, body: dict, headers: dict) -> tuple[float, float]:
    """(seconds to the first content byte, seconds to the end) of one streamed request."""
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and ('"content"' in line or "text_delta" in line) and "delta" in line:
                first = time.perf_counter() - started
    return (first if first is not None else float("nan")), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the tiny random test model)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    import tempfile
    from pathlib import Path

    from tiny_model import copy_without_eos

    from mlxclaude import logs

    work = Path(tempfile.mkdtemp(prefix="mlxclaude-bench-routes-"))
    logs.configure(work / "server.jsonl", echo=False)
    model = _support.bench_model(args.model)
    if not args.model:
        model = copy_without_eos(model, work / model.name)  # every reply runs to --tokens
    upstream = MlxLmServer(model, work / "mlx-lm.log").start()
    dead = f"http://127.0.0.1:{free_port()}"
    toml = (f'[backends.gpu]\nkind = "openai"\nurl = "{upstream.url}/v1"\nmodel = "default_model"\n'
            f'[backends.dead]\nkind = "openai"\nurl = "{dead}/v1"\ncooldown = "1h"\n'
            f'[routes]\n"*opus*" = "gpu"\n"*haiku*" = "dead"\n"*" = "local"\n[fallbacks]\ndead = ["local"]\n')
    routing = parse_routing(tomllib.loads(toml), local_model="local")
    local = ScriptedBackend(lambda chat: "ok", name="local")
    messages = [{"role": "user", "content": "Tell me a story about a lighthouse."}]
    try:
        with live_server(lambda: local, routing=routing, auth_token=TOKEN) as server:
            direct_body = {"model": "default_model", "max_tokens": args.tokens, "temperature": 0, "stream": True,
                           "messages": messages}
            routed_body = {"model": "claude-opus-4-1", "max_tokens": args.tokens, "temperature": 0, "stream": True,
                           "messages": messages}
            ours = {"x-api-key": TOKEN}
            rows = {"direct": [], "routed": []}
            for _ in range(args.requests):
                rows["direct"].append(timed_stream(f"{upstream.url}/v1/chat/completions", direct_body, {}))
                rows["routed"].append(timed_stream(f"{server.url}/v1/messages", routed_body, ours))
            fallback = {**routed_body, "model": "claude-haiku-4-5"}
            failing = [timed_stream(f"{server.url}/v1/messages", fallback, ours)[1] for _ in range(2)]
            cooling = [timed_stream(f"{server.url}/v1/messages", fallback, ours)[1] for _ in range(args.requests)]
            straight = [timed_stream(f"{server.url}/v1/messages", {**fallback, "model": "claude-sonnet-4-5"}, ours)[1]
                        for _ in range(args.requests)]
    finally:
        upstream.kill()

    def median(values):
        return statistics.median(values) * 1000

    print(f"model: {model.name}  {args.requests} streamed requests each, max_tokens {args.tokens}, greedy"
          f" (EOS off on the tiny model)\n")
    print(f"{'mlx_lm.server':<28}{'TTFT ms':>10}{'total ms':>10}")
    for name, label in (("direct", "asked directly"), ("routed", "through mlxclaude (openai)")):
        firsts, totals = zip(*rows[name])
        print(f"{label:<28}{median(firsts):>10.1f}{median(totals):>10.1f}")
    overhead = median([t for _, t in rows["routed"]]) / median([t for _, t in rows["direct"]])
    print(f"through mlxclaude ÷ direct (total): {overhead:.2f}x\n")
    print(f"{'a request to a dead backend with a fallback':<48}{'total ms':>10}")
    print(f"{'  while it fails (connection refused, 2 tries)':<48}{median(failing):>10.1f}")
    print(f"{'  while it cools down (not tried)':<48}{median(cooling):>10.1f}")
    print(f"{'  the fallback asked directly (its own route)':<48}{median(straight):>10.1f}")


if __name__ == "__main__":
    main()
