"""`mlxclaude models check`: will this model work with Claude Code on this machine?

`check_model` runs ten checks in a fixed order and always reports all ten lines (see
LINE_NAMES). A check that cannot run because an earlier one failed is reported as
`fail` with a detail starting "skipped: ". The model runs through engine APIs (engine/local_backend: load,
render, generate, measure_speed, memory_facts); the tool-call probe is in check_tools. The context
line is models/context_fit.py, the same verdict `doctor`, `run` and `up` give; when Claude Code's prompt
does not fit, the slow checks after it (generation, tool call, speed) are skipped: the model is unfit
whatever they would say.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

from mlxclaude.config.units import format_bytes
from mlxclaude.engine.memory import memory_facts
from mlxclaude.models.check_report import LINE_NAMES, CheckLine, CheckReport, Status  # noqa: F401  (re-exported)
from mlxclaude.models.check_tools import CLAUDE_CODE_TOOLS, one_line, run_chat, schema_errors, snippet, tool_call_attempt, tool_call_example  # noqa: F401  (schema_errors re-exported for callers and tests)
from mlxclaude.models.memory import WEIGHTS_OVERHEAD, kv_bytes_per_token, max_context_that_fits  # noqa: F401  (re-exported for callers and tests)
from mlxclaude.parsing.events import ToolCall
from mlxclaude.parsing.tools import HERMES, ToolFormat
from mlxclaude.protocol.chat import ChatRequest, Sampling, ToolChoice

MIN_DECODE_TPS = 5.0
MIN_PREFILL_TPS = 50.0
SPEED_PROMPT_TOKENS = 1024
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")
TOKENIZER_EXTRAS = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------

def _generic_tool_format() -> ToolFormat:
    """The format tools use when a model's template has no known family."""
    import mlxclaude.parsing.tools as tools

    return getattr(tools, "GENERIC", HERMES)


class _Checker:
    def __init__(self, path: Path, name: str, generate_tokens: int) -> None:
        self.path = path
        self.name = name
        self.generate_tokens = max(1, generate_tokens)
        self.figures: dict[str, float | int | str] = {}
        self.config: Optional[dict] = None
        self.backend: Any = None
        self.template_ok = False
        self.available: Optional[int] = None  # free memory for the model, as the memory line found it
        self.context_ok = True
        self.advice: Optional[str] = None

    def files(self) -> CheckLine:
        if not self.path.is_dir():
            return CheckLine("files", "fail", f"not a directory: {self.path}")
        missing, found = [], []
        config = self.path / "config.json"
        if config.is_file():
            found.append("config.json")
            try:
                self.config = json.loads(config.read_text())
            except (OSError, ValueError) as exc:
                return CheckLine("files", "fail", f"config.json is not valid JSON: {one_line(exc)}")
        else:
            missing.append("config.json")
        weights = sorted(self.path.glob("*.safetensors"))
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
            except (OSError, ValueError):
                shards = set()
            missing += sorted(s for s in shards if not (self.path / s).is_file())
        if weights:
            size = sum(w.stat().st_size for w in weights)
            self.figures["weights_bytes"] = size
            found.append(f"{len(weights)} weight file{'s' if len(weights) > 1 else ''} ({format_bytes(size)})")
        else:
            others = sorted(p.name for p in self.path.iterdir() if p.suffix in (".bin", ".gguf", ".pt", ".pth"))
            hint = f" (found {', '.join(others[:3])}: convert it with mlx_lm.convert)" if others else ""
            missing.append(f"weights (*.safetensors){hint}")
        tokenizers = [f for f in TOKENIZER_FILES if (self.path / f).is_file()]
        tokenizers += sorted(p.name for p in self.path.glob("*.tiktoken"))
        if not tokenizers:
            missing.append("tokenizer (tokenizer.json or tokenizer.model)")
        found += tokenizers + [f for f in TOKENIZER_EXTRAS if (self.path / f).is_file()]
        if missing:
            return CheckLine("files", "fail", "missing: " + "; ".join(missing))
        return CheckLine("files", "ok", ", ".join(found))

    def load(self) -> CheckLine:
        from mlxclaude.engine.local_backend import open_local_backend

        started = time.perf_counter()
        try:
            self.backend = open_local_backend(self.path, name=self.name)
        except Exception as exc:  # ModelLoadError, or whatever mlx-lm raised while building the model
            return CheckLine("load", "fail", one_line(exc))
        seconds = time.perf_counter() - started
        broken = self._tokenizer_problem()
        if broken:
            self.backend = None
            return CheckLine("load", "fail", f"loaded, but {broken}; tokenizer.json or tokenizer.model is missing "
                                             "or broken")
        self.figures["load_seconds"] = round(seconds, 3)
        self.figures["model_context"] = self.backend.info.context_length
        config = self.config or {}
        kind = config.get("model_type") or (config.get("text_config") or {}).get("model_type") or "model"
        bits = (config.get("quantization") or {}).get("bits")
        quant = f", {bits}-bit" if bits else ""
        return CheckLine("load", "ok", f"{kind}{quant}, context {self.backend.info.context_length:,} tokens, "
                                       f"{self._sight(config)}loaded in {seconds:.1f}s")

    def _sight(self, config: dict) -> str:
        from mlxclaude.engine.loader import VISION_EXTRA_HINT, is_vision_config

        if self.backend.info.supports_vision:
            return "vision (sees images), "
        if is_vision_config(config):
            return f"vision model read as text ({VISION_EXTRA_HINT}), "
        return ""

    def _tokenizer_problem(self) -> Optional[str]:
        """Without its files, transformers builds an empty tokenizer instead of failing: catch that."""
        sample = "Hello, world! def main():"
        tokenizer = self.backend.tokenizer
        try:
            ids = list(tokenizer.encode(sample, add_special_tokens=False))
            back = tokenizer.decode(ids) if ids else ""
        except Exception as exc:
            return f"the tokenizer fails on plain text ({one_line(exc, 120)})"
        if not ids:
            return f"the tokenizer is empty (it encodes {sample!r} to no tokens)"
        if "world" not in back:
            return f"the tokenizer does not round-trip text ({sample!r} came back as {back!r})"
        return None

    def _render(self, chat: ChatRequest):
        return self.backend.render(chat)

    def template(self) -> CheckLine:
        from mlxclaude.engine.render import RenderError

        tokenizer = self.backend.tokenizer
        template = getattr(tokenizer, "chat_template", None) or getattr(
            getattr(tokenizer, "_tokenizer", None), "chat_template", None)
        if not template:
            return CheckLine("chat template", "fail",
                             "no chat template (tokenizer_config.json has no chat_template and there is no "
                             "chat_template.jinja); Claude Code needs one to format its conversation and tools")
        conversation = [
            {"role": "system", "content": "You are Claude Code, an interactive coding agent."},
            {"role": "user", "content": "List the files here, then read README.md."},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "toolu_01", "function": {
                "name": "Bash", "arguments": {"command": "ls"}}}]},
            {"role": "tool", "tool_call_id": "toolu_01", "name": "Bash", "content": "README.md\nsetup.py"},
        ]
        try:
            prompt = self._render(ChatRequest(model=self.name, messages=conversation, tools=CLAUDE_CODE_TOOLS))
        except RenderError as exc:
            try:
                self._render(ChatRequest(model=self.name, messages=conversation[:2], tools=CLAUDE_CODE_TOOLS))
            except RenderError:
                return CheckLine("chat template", "fail", one_line(exc))
            return CheckLine("chat template", "fail", "renders tools but rejects a tool call and its result: "
                                                      + one_line(exc))
        self.template_ok = True
        self.figures["prompt_tokens"] = len(prompt.tokens)
        expected = ["Read", "file_path", "Bash", "run_in_background"]
        absent = [word for word in expected if word not in prompt.text]
        if absent:
            return CheckLine("chat template", "warn",
                             f"renders, but the template ignores tools ({', '.join(absent)} not in the prompt); "
                             "Claude Code's tools will not reach the model")
        return CheckLine("chat template", "ok",
                         f"renders a tool conversation with the tool schemas ({len(prompt.tokens)} tokens)")

    def tool_format(self) -> CheckLine:
        fmt = self.backend.info.tool_format
        self.figures["tool_format"] = fmt.name if fmt else "none"
        if fmt is None or fmt.prompted:
            return CheckLine("tool format", "warn",
                             "no native tool-call format in the chat template; tools are described in the system "
                             f"prompt ({fmt.name if fmt else 'generic'} format)")
        return CheckLine("tool format", "ok", f"{fmt.name} ({fmt.render(ToolCall('f', {})).strip()[:40]}…)")

    def thinking(self) -> CheckLine:
        info = self.backend.info
        if info.think_open:
            self.figures["thinking"] = f"{info.think_open} {info.think_close or ''}".strip()
            return CheckLine("thinking", "ok", f"{info.think_open} … {info.think_close or '(no close marker)'}")
        self.figures["thinking"] = "none"
        return CheckLine("thinking", "ok", "none")

    def generation(self) -> CheckLine:
        chat = ChatRequest(model=self.name, messages=[{"role": "user", "content": "Say hello in one short sentence."}],
                           sampling=Sampling(temperature=0.0), max_tokens=self.generate_tokens)
        _, text, stats = run_chat(self.backend, chat)
        tokens = stats.generated_tokens if stats else 0
        self.figures["generated_tokens"] = tokens
        if not text.strip():
            return CheckLine("generation", "warn", f"the model produced no text ({tokens} tokens, then stopped)")
        return CheckLine("generation", "ok", f"{snippet(text)} ({tokens} tokens, greedy)")

    def tool_call(self) -> CheckLine:
        """Constraints on: a call forced with tool_choice must come back valid (ok). The model's own,
        unconstrained call is reported alongside (figure `tool_call_unconstrained`)."""
        native = self.backend.info.tool_format
        fmt = native or _generic_tool_format()
        example = tool_call_example(self.backend, self.name, fmt)
        via = "" if native else " (generic format)"
        call, problems, _ = tool_call_attempt(self.backend, self.name, fmt, example, ToolChoice(), constrained=False)
        unconstrained = "valid" if call is not None and not problems else "not valid: " + "; ".join(problems[:3])
        self.figures["tool_call_unconstrained"] = "valid" if unconstrained == "valid" else "invalid"
        if getattr(self.backend, "constraints", None) is None:
            if unconstrained != "valid":
                return CheckLine("tool call", "warn", f"model did not produce a valid tool call unconstrained, and "
                                                      f"constrained decoding is unavailable ({unconstrained[11:]})")
            assert call is not None
            return CheckLine("tool call", "ok", f"get_weather({one_line(json.dumps(call.arguments, ensure_ascii=False), 80)})"
                                                f"{via}, unconstrained (constrained decoding unavailable)")
        call, problems, _ = tool_call_attempt(self.backend, self.name, fmt, example, ToolChoice("tool", "get_weather"),
                                              constrained=True)
        self.figures["tool_call_constrained"] = "valid" if call is not None and not problems else "invalid"
        if call is None or problems:
            return CheckLine("tool call", "warn", "a call forced with tool_choice under constrained decoding came "
                                                  f"back invalid ({'; '.join(problems[:3])}); unconstrained: "
                                                  f"{unconstrained}")
        args = json.dumps(call.arguments, ensure_ascii=False)
        return CheckLine("tool call", "ok", f"get_weather({one_line(args, 80)}){via}, constrained decoding; "
                                            f"unconstrained: {unconstrained}")

    def speed(self) -> CheckLine:
        from mlxclaude.engine.render import RenderError

        tokenizer = self.backend.tokenizer
        paragraph = ("Claude Code reads the repository, runs the test suite with Bash, and edits files "
                     "until the failing test passes; then it explains the change in a short summary. ")
        repeats = math.ceil(SPEED_PROMPT_TOKENS / max(1, len(tokenizer.encode(paragraph)))) + 1
        chat = ChatRequest(model=self.name, messages=[{"role": "user", "content": paragraph * repeats}])
        try:
            tokens = self._render(chat).tokens
        except RenderError:
            tokens = list(tokenizer.encode(paragraph * repeats))
        tokens = tokens[-SPEED_PROMPT_TOKENS:]
        if not tokens:
            return CheckLine("speed", "fail", "the tokenizer produced no tokens for the test prompt")
        speed = self.backend.measure_speed(tokens, max(2, self.generate_tokens))
        prefill_tps, decode_tps = speed.prefill_tps, speed.decode_tps
        self.figures.update(prefill_tokens=speed.prompt_tokens, prefill_tps=round(prefill_tps, 1),
                            decode_tokens=speed.decode_tokens, decode_tps=round(decode_tps, 1))
        detail = f"prefill {prefill_tps:,.0f} tok/s ({len(tokens)}-token prompt), decode {decode_tps:,.1f} tok/s"
        if decode_tps < MIN_DECODE_TPS or prefill_tps < MIN_PREFILL_TPS:
            return CheckLine("speed", "warn", f"{detail}; Claude Code turns will be slow")
        return CheckLine("speed", "ok", detail)

    def memory(self, available: Optional[int]) -> CheckLine:
        from mlxclaude.engine.loader import context_length_of

        config = self.config or {}
        weights = int(self.figures.get("weights_bytes", 0))
        kv = kv_bytes_per_token(config)
        context = int(self.figures.get("model_context") or context_length_of(config))
        self.figures.update(kv_bytes_per_token=kv or 0, model_context=context)
        gpu_limit = self.backend.memory_facts().limit_bytes if self.backend is not None else None
        if gpu_limit and available is not None and gpu_limit < available:
            available, where = gpu_limit, " (Metal working-set limit)"
        else:
            where = " free"
        self.available = available
        kv_text = f"KV cache {format_bytes(kv)}/token" if kv else "KV cache size unknown"
        if available is None:
            return CheckLine("memory", "warn", f"could not read free memory; weights {format_bytes(weights)}, {kv_text}")
        self.figures["available_bytes"] = available
        fits = max_context_that_fits(model_context=context, available_bytes=available, weights_bytes=weights,
                                     kv_per_token=kv)
        self.figures["max_context"] = fits
        base = f"weights {format_bytes(weights)}, {kv_text}, {format_bytes(available)}{where}"
        if weights * WEIGHTS_OVERHEAD >= available:
            return CheckLine("memory", "fail", f"the weights don't fit: {base}")
        if not kv:
            return CheckLine("memory", "warn", f"{base}; could not work out the KV-cache size from config.json")
        limit = "the model's maximum" if fits == context else "memory-bound"
        return CheckLine("memory", "ok", f"{base}: a {fits:,}-token context fits ({limit})")

    def context(self) -> CheckLine:
        """Claude Code's prompt against the context (models/context_fit.py: what doctor, run and up decide by)."""
        from mlxclaude.engine.tokenizer_only import quiet_length_warning
        from mlxclaude.models.context_fit import ContextUnknown, context_fit

        quiet_length_warning(self.backend.tokenizer)
        try:
            fit = context_fit(self.path, name=self.name, render=self._render, available_bytes=self.available,
                              config=self.config)
        except ContextUnknown as exc:
            self.context_ok = False
            return CheckLine("context", "fail", exc.message)
        self.figures.update(fit.figures())
        self.context_ok = fit.fits
        self.advice = fit.advice("mlxclaude run")
        return CheckLine("context", fit.status, fit.detail())


def check_model(path: Path | str, *, name: str | None = None, generate_tokens: int = 16,
                on_line: Callable[[CheckLine], None] | None = None,
                on_start: Callable[[str], None] | None = None) -> CheckReport:
    """Check a local mlx-lm model directory for use with Claude Code; every line in LINE_NAMES, in order.
    `on_start(name)` is called as a check begins (a spinner), `on_line(line)` as it ends."""
    path = Path(path).expanduser()
    available = memory_facts().available_bytes  # before loading, so the model's own weights aren't counted as used
    checker = _Checker(path, name or path.name, generate_tokens)
    report = CheckReport(model=checker.name, path=str(path), figures=checker.figures)

    def run(line_name: str, check: Callable[[], CheckLine], skip: Optional[str] = None) -> CheckLine:
        if skip:
            line = CheckLine(line_name, "fail", f"skipped: {skip}")
        else:
            if on_start is not None:
                on_start(line_name)
            try:
                line = check()
            except Exception as exc:  # a check that crashes is a failed check, not a failed report
                line = CheckLine(line_name, "fail", f"{type(exc).__name__}: {one_line(exc)}")
        report.lines.append(line)
        if on_line is not None:
            on_line(line)
        return line

    try:
        files = run("files", checker.files)
        run("load", checker.load, None if path.is_dir() else "no model directory")  # never a hub download
        no_model = None if checker.backend is not None else "model did not load"
        run("chat template", checker.template, no_model)
        run("tool format", checker.tool_format, no_model)
        run("thinking", checker.thinking, no_model)
        no_config = None if checker.config is not None else (
            "no readable config.json" if files.status == "fail" else "config.json unreadable")
        run("memory", lambda: checker.memory(available), no_config)
        no_template = no_model or (None if checker.template_ok else "no usable chat template")
        run("context", checker.context, no_template or no_config)
        unfit = None if checker.context_ok else "Claude Code's prompt does not fit (see context)"
        no_template = no_template or unfit
        run("generation", checker.generation, no_template)
        run("tool call", checker.tool_call, no_template)
        run("speed", checker.speed, no_model or unfit)
        report.advice = checker.advice
    finally:
        if checker.backend is not None:
            checker.backend.close()
        checker.backend = None  # let the weights go before the caller renders the report
    return report
