"""CPU time per generated token: the mlxclaude server against mlx-lm's BatchGenerator alone, side by side.

Each side runs in a process of its own and is measured by that process's CPU time (user + system), so a
loaded machine does not blur the comparison: `BatchGenerator` decoding S prompts of N tokens each, and
`mlxclaude serve` answering S concurrent streaming requests of N tokens (HTTP, rendering, the reply parser,
SSE, accounting and logs included), with and without tools in the request (tools turn on constrained
decoding). A model whose replies never end (the tiny model with its end-of-reply pointed at a token it never
writes) makes every stream exactly N tokens. Speculation is off on the server: this is the plain hot path. The
client reads raw bytes off its sockets and parses each reply once at its end (an SDK parsing every event would
take cores from the server on a small machine, and with them its caches).
Target (issue O): ≤ 1.05× BatchGenerator's CPU per token, tools included.

Both sides stay up and their measured rounds alternate, so a slow spell of a shared machine falls on both. Two
figures per side: CPU per token of a long round (N = 3 × --tokens), a request's fixed costs included (rendering,
the prompt-cache lookup and store, logs), and the marginal CPU per token between a short and a long round: the
per-token hot path alone, which the target is about.

Each side's CPU is also split by thread: its Python threads (BatchGenerator's main thread; the server's event
loop and its engine thread, which `/mlxclaude/status` names) and MLX's compute threads. Both sides run the same forward
passes, yet on a small shared machine the compute threads' CPU moves by several percent from round to round,
more than the server adds; the last column takes the compute as equal and adds only the Python threads'
difference: the server's own cost, without that noise.

    python bench/hot_path.py [--model DIR] [--tokens 128] [--streams 1,8] [--repeats 3]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import _support  # noqa: F401  (sys.path)
from concurrency import mlxclaude_server

PROMPTS = ["Write a story about a lighthouse.", "def parse(text):", "Explain recursion with an example.",
           "List the planets.", "import os", "class Cache:", "Summarise the French revolution.", "SELECT * FROM"]
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}

ALONE = r"""
import json, resource, sys, time
from mlx_lm import load
from mlx_lm.generate import BatchGenerator
model_dir, encoded = sys.argv[1], json.loads(sys.argv[2])
model, tokenizer = load(model_dir)

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, time.thread_time()

def run(tokens):
    # the clock starts once every prompt is prefilled: the server's prompt cache holds its prompts by then
    generator = BatchGenerator(model, max_tokens=tokens, completion_batch_size=len(encoded), prefill_batch_size=len(encoded))
    uids = generator.insert(encoded, max_tokens=[tokens] * len(encoded))
    started, produced = set(), 0
    while len(started) < len(uids):
        for response in generator.next_generated():
            started.add(response.uid)
            produced += 1
    (before, python_before), first = cpu(), produced
    while produced < tokens * len(encoded):
        produced += len(generator.next_generated())
    after, python_after = cpu()
    generator.close()
    return after - before, python_after - python_before, produced - first

for line in sys.stdin:  # one measured run per line asked (tokens per stream): alternated with the server's
    print(json.dumps(run(int(line))), flush=True)
"""


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread's name and CPU seconds (user + system)."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)
        ticks = fields.split()
        threads[int(task.name)] = (name, (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK"))
    return threads


def cpu_split(pid: int, python_threads: set[int]) -> tuple[float, float]:
    """The process's CPU seconds, and those of its threads in `python_threads`."""
    threads = thread_cpu(pid)
    return (sum(seconds for _, seconds in threads.values()),
            sum(seconds for tid, (_, seconds) in threads.items() if tid in python_threads))


@dataclass
class Round:
    cpu: float  # seconds, the whole process
    python: float  # seconds, its Python threads
    tokens: int


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


class Alone:
    """BatchGenerator alone, in a process of its own that runs one measured round per request."""

    def __init__(self, model_dir: Path, streams: int, tools: bool) -> None:
        prompts = rendered(model_dir, streams, 1, tools)
        self.process = subprocess.Popen([sys.executable, "-c", ALONE, str(model_dir), json.dumps(prompts)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def round(self, tokens: int) -> Round:
        """CPU seconds and tokens generated in a round of `tokens` per stream."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{tokens}\n")
        self.process.stdin.flush()
        return Round(*json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(30)


class Served:
    """`mlxclaude serve` (speculation off), answering S concurrent streaming requests per round."""

    def __init__(self, model_dir: Path, streams: int, tools: bool, home: Path) -> None:
        self.streams, self.tools = streams, tools
        self.server = mlxclaude_server(model_dir, max_batch=max(8, streams), home=home,
                                       env={"MLXCLAUDE_SPECULATIVE": "off"}).__enter__()
        self.port = self.server.port
        self._python_threads: Optional[set[int]] = None

    def _ask_all(self, tokens: int) -> int:
        """S streaming requests at once, each read by a thread as raw bytes off its socket and parsed once at the
        end: the client shares this machine's cores with the server, so it does as little per token as it can."""
        counts = [0] * self.streams

        def ask(index: int) -> None:
            payload = json.dumps(body(index, tokens, self.tools)).encode()
            received = self._raw("POST /v1/messages", b"content-type: application/json\r\n", payload)
            ending = received[received.rindex(b'{"type":"message_delta"'):]
            counts[index] = json.loads(ending[:ending.index(b"\n")])["usage"]["output_tokens"]

        threads = [threading.Thread(target=ask, args=(index,)) for index in range(self.streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts)

    def _raw(self, request_line: str, headers: bytes = b"", payload: bytes = b"") -> bytearray:
        """One HTTP/1.1 exchange on a socket of its own: the reply's raw bytes, headers included."""
        head = (f"{request_line} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(payload)}\r\n"
                f"connection: close\r\n").encode() + headers + b"\r\n"
        received = bytearray()
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(head + payload)
            while chunk := sock.recv(1 << 16):
                received += chunk
        return received

    def python_threads(self) -> set[int]:
        """The event loop's thread (the process's main one) and the engine's (asked once, after it has started)."""
        assert self.server.process is not None
        if self._python_threads is None:
            received = self._raw("GET /mlxclaude/status")
            status = json.loads(received[received.index(b"\r\n\r\n") + 4:])
            self._python_threads = {self.server.process.pid, status["batch"]["engine_thread"]}
        return self._python_threads

    def round(self, tokens: int) -> Round:
        assert self.server.process is not None
        pid, python_threads = self.server.process.pid, self.python_threads()
        cpu, python = cpu_split(pid, python_threads)
        produced = self._ask_all(tokens)
        cpu_after, python_after = cpu_split(pid, python_threads)
        return Round(cpu_after - cpu, python_after - python, produced)

    def close(self) -> None:
        self.server.__exit__(None, None, None)


def compare(model_dir: Path, streams: int, tokens: int, tools: bool, home: Path, repeats: int) -> dict[str, float]:
    """Both sides up at once, a warm-up round each (compiled kernels; the server's prompt cache), then rounds
    alternating between them and between `tokens` and 3 × `tokens` per stream, so a slow spell of the machine
    falls on both. Per side, the medians of: CPU per token of the long rounds (`per_token`, fixed costs
    included), and the marginal CPU per token, (long − short) / (tokens between them): the hot path alone, a
    request's fixed costs (rendering, the prompt-cache lookup and store, logging) cancelled out; the same for
    the Python threads alone (`python_marginal`)."""
    alone, served = Alone(model_dir, streams, tools), Served(model_dir, streams, tools, home)
    try:
        alone.round(tokens), served.round(tokens)
        figures: dict[str, list[float]] = {}
        for _ in range(repeats):
            for name, side in (("alone", alone), ("served", served)):
                short, long = side.round(tokens), side.round(3 * tokens)
                between = max(1, long.tokens - short.tokens)
                for key, value in ((name, long.cpu / max(1, long.tokens)),
                                   (f"{name}_marginal", (long.cpu - short.cpu) / between),
                                   (f"{name}_python_marginal", (long.python - short.python) / between)):
                    figures.setdefault(key, []).append(value)
        return {name: statistics.median(values) for name, values in figures.items()}
    finally:
        alone.close()
        served.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: a small random model built offline)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per stream of a short round (long: 3×)")
    parser.add_argument("--streams", default="1,8")
    parser.add_argument("--repeats", type=int, default=3, help="short+long round pairs per side, alternating")
    args = parser.parse_args()

    from tiny_model import copy_without_eos

    source = _support.bench_model(args.model, num_layers=4, hidden_size=256, num_heads=4)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = copy_without_eos(Path(source), Path(scratch) / "model")
        print(f"model: {source}  tokens per stream: {args.tokens} and {3 * args.tokens}  (CPU ms per generated token, "
              f"medians of {args.repeats})")
        print("BatchGenerator decodes the very prompt tokens the server renders (the tools' text included)")
        print(f"{'':>14}  {'per token (fixed costs in)':^34}  {'marginal per token (hot path)':^34}  "
              f"{'Python threads, marginal':^34}")
        print(f"{'streams':>7}  {'tools':>5}  {'BatchGenerator':>14}  {'server':>8}  {'ratio':>6}  "
              f"{'BatchGenerator':>14}  {'server':>8}  {'ratio':>6}  {'BatchGenerator':>14}  {'server':>8}  "
              f"{'ratio, compute as equal':>23}")
        for streams in (int(value) for value in args.streams.split(",")):
            for tools in (False, True):
                got = compare(model_dir, streams, args.tokens, tools, Path(scratch) / f"home-{streams}-{tools}",
                              args.repeats)
                print(f"{streams:>7}  {'yes' if tools else 'no':>5}  {got['alone'] * 1e3:>14.3f}  "
                      f"{got['served'] * 1e3:>8.3f}  {got['served'] / got['alone']:>5.2f}×  "
                      f"{got['alone_marginal'] * 1e3:>14.3f}  {got['served_marginal'] * 1e3:>8.3f}  "
                      f"{got['served_marginal'] / got['alone_marginal']:>5.2f}×  "
                      f"{got['alone_python_marginal'] * 1e3:>14.3f}  {got['served_python_marginal'] * 1e3:>8.3f}  "
                      f"{1 + (got['served_python_marginal'] - got['alone_python_marginal']) / got['alone_marginal']:>22.3f}×")


if __name__ == "__main__":
    main()
