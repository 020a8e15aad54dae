"""CPU time per generated token: the mlxclaude server against mlx-lm's BatchGenerator alone, side by side.

Each side runs in a process of its own and is measured by that process's CPU time (user + system), so a
loaded machine does not blur the comparison: `BatchGenerator` decoding S prompts of N tokens each, and
`mlxclaude serve` answering S concurrent streaming requests of N tokens (HTTP, rendering, the reply parser,
SSE, accounting and logs included), with and without tools in the request (tools turn on constrained
decoding). A model whose replies never end (the tiny model with its end-of-reply pointed at a token it never
writes) makes every stream exactly N tokens. Speculation is off on the server: this is the plain hot path.
Target (issue O): ≤ 1.05× BatchGenerator's CPU per token, tools included.

Each side's figure is the median of --repeats measured runs (this machine's CPU time wobbles by ±5 %).

    python bench/hot_path.py [--model DIR] [--tokens 256] [--streams 1,8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _support  # noqa: F401  (sys.path)

PROMPTS = ["Write a story about a lighthouse.", "def parse(text):", "Explain recursion with an example.",
           "List the planets.", "import os", "class Cache:", "Summarise the French revolution.", "SELECT * FROM"]
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}

ALONE = r"""
import json, resource, sys
from mlx_lm import load
from mlx_lm.generate import BatchGenerator
model_dir, encoded, tokens = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
model, tokenizer = load(model_dir)

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def run():
    # the clock starts once every prompt is prefilled: the server's prompt cache holds its prompts by then
    generator = BatchGenerator(model, max_tokens=tokens, completion_batch_size=len(encoded), prefill_batch_size=len(encoded))
    uids = generator.insert(encoded, max_tokens=[tokens] * len(encoded))
    started, produced = set(), 0
    while len(started) < len(uids):
        for response in generator.next_generated():
            started.add(response.uid)
            produced += 1
    before, first = cpu(), produced
    while produced < tokens * len(encoded):
        produced += len(generator.next_generated())
    used = cpu() - before
    generator.close()
    return used, produced - first

run()  # warm-up: compiled kernels, allocator
print(json.dumps([used / produced for used, produced in (run() for _ in range(int(sys.argv[4])))]))
"""


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body(index: int, tokens: int, tools: bool) -> dict:
    return {"model": "claude-x", "max_tokens": tokens, "stream": True, "temperature": 0,
            "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
            **({"tools": [BASH]} if tools else {})}


def rendered(model_dir: Path, streams: int, tokens: int, tools: bool) -> list[list[int]]:
    """The prompt tokens the server decodes after, so both sides attend over the same context."""
    from mlxclaude.engine.tokenizer_only import TokenizerOnly
    from mlxclaude.protocol.request import to_chat_request
    from mlxclaude.protocol.wire import MessageCreateParams

    renderer = TokenizerOnly(model_dir)
    return [list(renderer.render(to_chat_request(MessageCreateParams.model_validate(body(index, tokens, tools)))).tokens)
            for index in range(streams)]


def alone(model_dir: Path, streams: int, tokens: int, tools: bool, repeats: int) -> float:
    prompts = rendered(model_dir, streams, tokens, tools)
    out = subprocess.run([sys.executable, "-c", ALONE, str(model_dir), json.dumps(prompts), str(tokens), str(repeats)],
                         capture_output=True, text=True, check=True)
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def served(model_dir: Path, streams: int, tokens: int, tools: bool, home: Path, repeats: int) -> float:
    import httpx

    port = free_port()
    env = {**os.environ, "MLXCLAUDE_HOME": str(home), "MLXCLAUDE_SPECULATIVE": "off",
           "MLXCLAUDE_MAX_BATCH": str(max(8, streams))}
    server = subprocess.Popen([sys.executable, "-c", "import sys; sys.argv[0] = 'mlxclaude'; "
                               "from mlxclaude.cli.main import main; main()", "serve", "--model", str(model_dir),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

        def one_round() -> int:
            counts = [0] * streams

            def ask(index: int) -> None:
                with httpx.stream("POST", f"{url}/v1/messages", json=body(index, tokens, tools),
                                  timeout=600) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: ") and '"message_delta"' in line:
                            counts[index] = json.loads(line[6:])["usage"]["output_tokens"]

            threads = [threading.Thread(target=ask, args=(index,)) for index in range(streams)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(counts)

        one_round()  # warm-up (and the prompt cache: both sides then prefill little)
        per_token = []
        for _ in range(repeats):
            before = process_cpu(server.pid)
            produced = one_round()
            per_token.append((process_cpu(server.pid) - before) / max(1, produced))
        return statistics.median(per_token)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: a small random model built offline)")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--streams", default="1,8")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per side; the median is printed")
    args = parser.parse_args()

    from tiny_model import copy_without_eos

    source = _support.bench_model(args.model, num_layers=4, hidden_size=256, num_heads=4)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = copy_without_eos(Path(source), Path(scratch) / "model")
        print(f"model: {source}  tokens per stream: {args.tokens}  (CPU ms per generated token)")
        print("BatchGenerator decodes the very prompt tokens the server renders (the tools' text included)")
        print(f"{'streams':>7}  {'tools':>5}  {'BatchGenerator':>14}  {'server':>8}  {'ratio':>6}")
        for streams in (int(value) for value in args.streams.split(",")):
            for tools in (False, True):
                base = alone(model_dir, streams, args.tokens, tools, args.repeats)
                served_cpu = served(model_dir, streams, args.tokens, tools,
                                    Path(scratch) / f"home-{streams}-{tools}", args.repeats)
                print(f"{streams:>7}  {'yes' if tools else 'no':>5}  {base * 1e3:>14.3f}  {served_cpu * 1e3:>8.3f}  "
                      f"{served_cpu / base:>5.2f}×")


if __name__ == "__main__":
    main()
