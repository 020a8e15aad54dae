"""Decode tok/s of the server (client-observed, over SSE) against mlx_lm.stream_generate in-process.

Same model, same prompt, greedy, a fixed number of tokens (EOS ignored on both sides so the
random-weight model cannot end early). Prints one table with the ratio.

    python bench/decode_speed.py [--model DIR] [--tokens 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _support  # noqa: F401  (sys.path)


def in_process_tps(model, tokenizer, prompt_tokens: list[int], tokens: int) -> float:
    from mlx_lm import stream_generate

    last = None
    for last in stream_generate(model, tokenizer, prompt_tokens, max_tokens=tokens):
        pass
    return last.generation_tps


def server_tps(client, messages, tokens: int) -> tuple[float, int]:
    first = None
    with client.messages.stream(model="claude-opus-4-8", max_tokens=tokens, extra_body={"temperature": 0.0},
                                messages=messages) as stream:
        for event in stream:
            if first is None and event.type == "content_block_delta":
                first = time.perf_counter()
        final = stream.get_final_message()
    elapsed = time.perf_counter() - first
    return (final.usage.output_tokens - 1) / elapsed, final.usage.output_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: a tiny random model built offline)")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import anthropic
    from mlx_lm import load

    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon.serve import mlx_backend_loader
    from support.live_server import live_server

    model_dir = _support.bench_model(args.model, num_layers=4, hidden_size=256, num_heads=4)
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    model, tokenizer = load(str(model_dir))
    tokenizer._eos_token_ids = set()
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    settings = ServerSettings(model=str(model_dir))
    local, served = [], []
    with live_server(mlx_backend_loader(settings)) as server:
        server.worker.backend.tokenizer._eos_token_ids = set()
        client = anthropic.Anthropic(base_url=server.url, api_key="bench", max_retries=0)
        for _ in range(args.rounds):
            local.append(in_process_tps(model, tokenizer, prompt, args.tokens))
            tps, produced = server_tps(client, messages, args.tokens)
            assert produced == args.tokens, f"server produced {produced} tokens"
            served.append(tps)

    local_tps, served_tps = statistics.median(local), statistics.median(served)
    print(f"model: {model_dir.name}  prompt: {len(prompt)} tokens  decode: {args.tokens} tokens  rounds: {args.rounds}")
    print(f"{'path':<40}{'decode tok/s (median)':>24}")
    print(f"{'mlx_lm.stream_generate (in-process)':<40}{local_tps:>24.1f}")
    print(f"{'mlxclaude server (SSE, client-side)':<40}{served_tps:>24.1f}")
    print(f"{'ratio server / in-process':<40}{served_tps / local_tps:>24.3f}")


if __name__ == "__main__":
    main()
