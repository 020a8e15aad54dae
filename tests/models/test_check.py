"""`mlxclaude models check` core: the real MLX engine on the tiny random model, and the pure arithmetic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlxclaude.models.check import LINE_NAMES, CheckLine, CheckReport, check_model, kv_bytes_per_token, max_context_that_fits, schema_errors


def by_name(report: CheckReport) -> dict[str, CheckLine]:
    return {line.name: line for line in report.lines}


@pytest.fixture(scope="module")
def checked(tiny_model_dir):
    seen: list[CheckLine] = []
    report = check_model(tiny_model_dir, generate_tokens=8, on_line=seen.append)
    return report, seen


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, target)
    return target


@pytest.mark.mlx
def test_tiny_model_report_has_every_line_and_the_figures(checked, tiny_model_dir):
    report, _ = checked
    assert [line.name for line in report.lines] == list(LINE_NAMES)
    lines = by_name(report)
    for name in ("files", "load", "chat template", "tool format"):
        assert lines[name].status == "ok", lines[name]
    assert "hermes" in lines["tool format"].detail
    # the tiny tokenizer (trained on Python source) counts Claude Code's prompt at 27,379 tokens: it fits the
    # 32k context with 4,096 for a reply, but leaves little for the conversation
    assert lines["context"].status == "warn", lines["context"]
    assert "Claude Code needs 31,475 tokens (27,379 for its system prompt and tools" in lines["context"].detail
    assert "the model's context is 32,768, which leaves 5,389 tokens" in lines["context"].detail
    assert lines["thinking"].status == "ok" and "<think>" in lines["thinking"].detail
    for name in ("generation", "tool call", "speed", "memory"):
        assert lines[name].status in ("ok", "warn"), lines[name]
        assert lines[name].detail
    if lines["tool call"].status == "warn":
        assert "constrained decoding" in lines["tool call"].detail
    figures = report.figures
    assert figures["decode_tps"] > 0 and figures["prefill_tps"] > 0
    assert figures["prefill_tokens"] == 1024 and figures["decode_tokens"] == 8
    assert figures["max_context"] == 32768 == figures["model_context"]
    assert figures["kv_bytes_per_token"] == 2 * 1 * 2 * 32 * 4  # 1 layer, 2 kv heads, head_dim 64/2, float32
    assert figures["weights_bytes"] == (Path(tiny_model_dir) / "model.safetensors").stat().st_size
    assert figures["tool_format"] == "hermes"
    assert (figures["claude_code_prompt_tokens"], figures["context_needed"], figures["context_available"]) == (
        27379, 31475, 32768)
    assert report.fit_for_claude_code and report.advice is None
    assert report.model == Path(tiny_model_dir).name and report.path == str(tiny_model_dir)


@pytest.mark.mlx
def test_on_line_is_called_once_per_line_in_order(checked):
    report, seen = checked
    assert [id(line) for line in seen] == [id(line) for line in report.lines]


@pytest.mark.mlx
def test_report_serialises(checked):
    report, _ = checked
    data = json.loads(json.dumps(report.to_dict()))
    assert data["fit_for_claude_code"] is True
    assert data["verdict"] == report.verdict
    assert [line["name"] for line in data["lines"]] == list(LINE_NAMES)
    assert set(data["lines"][0]) == {"name", "status", "detail"}
    assert data["figures"]["decode_tps"] > 0


@pytest.mark.mlx
def test_missing_tokenizer_fails_files_and_load(model_copy):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"):
        (model_copy / name).unlink(missing_ok=True)
    seen: list[CheckLine] = []
    report = check_model(model_copy, name="broken", on_line=seen.append)
    lines = by_name(report)
    assert lines["files"].status == "fail" and "tokenizer" in lines["files"].detail
    assert lines["files"].detail.startswith("missing:")
    assert lines["load"].status == "fail" and "tokenizer" in lines["load"].detail
    for name in LINE_NAMES[2:]:
        if name != "memory":
            assert (lines[name].status, lines[name].detail) == ("fail", "skipped: model did not load")
    assert lines["memory"].status == "ok"  # read from config.json and the weight files alone
    assert len(seen) == len(LINE_NAMES)
    assert not report.fit_for_claude_code
    assert report.verdict == "broken is not fit for Claude Code on this machine (failed: files, load)."


@pytest.mark.mlx
def test_missing_chat_template_fails_the_template_line(model_copy):
    config_path = model_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))
    (model_copy / "chat_template.jinja").unlink(missing_ok=True)
    report = check_model(model_copy, generate_tokens=4)
    lines = by_name(report)
    assert lines["files"].status == "ok" and lines["load"].status == "ok"
    assert lines["chat template"].status == "fail"
    assert "no chat template" in lines["chat template"].detail
    assert "Claude Code needs one" in lines["chat template"].detail
    assert lines["generation"].detail == lines["tool call"].detail == "skipped: no usable chat template"
    assert lines["speed"].status in ("ok", "warn")  # speed doesn't need a template
    assert not report.fit_for_claude_code
    assert "not fit" in report.verdict and "chat template" in report.verdict


def scripted_generate(reply: str, chats: list):
    """Stand-in for MlxBackend.generate: the real prompt path, a fixed reply (fakes live in tests/)."""
    from mlxclaude.engine.backend import GenerationStats

    def generate(self, prompt, chat, max_tokens, cancel):
        chats.append(chat)
        for piece in (reply[: len(reply) // 2], reply[len(reply) // 2 :]):
            if not cancel.is_set():
                yield piece
        yield GenerationStats(prompt_tokens=len(prompt.tokens), generated_tokens=12, decode_seconds=0.01)

    return generate


@pytest.mark.mlx
@pytest.mark.parametrize("arguments, status, detail", [
    ({"city": "Tokyo"}, "ok", 'get_weather({"city": "Tokyo"})'),
    ({"town": "Tokyo"}, "warn", "misses required 'city'"),
])
def test_tool_call_is_parsed_and_validated(tiny_model_dir, monkeypatch, arguments, status, detail):
    from mlxclaude.engine.mlx_backend import MlxBackend

    chats: list = []
    call = json.dumps({"name": "get_weather", "arguments": arguments})
    monkeypatch.setattr(MlxBackend, "generate", scripted_generate(f"<tool_call>\n{call}\n</tool_call>", chats))
    line = by_name(check_model(tiny_model_dir))["tool call"]
    assert line.status == status and detail in line.detail, line
    system = chats[-1].messages[0]["content"]  # the example is the model's own template rendering a call
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}\n</tool_call>' in system


def test_missing_directory_reports_every_line():
    report = check_model(Path("/nonexistent/model-dir"))
    assert [line.name for line in report.lines] == list(LINE_NAMES)
    assert all(line.status == "fail" for line in report.lines)
    assert by_name(report)["files"].detail == "not a directory: /nonexistent/model-dir"
    assert by_name(report)["load"].detail == "skipped: no model directory"


# ---- pure: KV cache arithmetic ---------------------------------------------------------------

LLAMA2_7B = {"model_type": "llama", "num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096,
             "torch_dtype": "float16"}
LLAMA3_8B = {"model_type": "llama", "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "hidden_size": 4096, "torch_dtype": "bfloat16"}
GEMMA_7B = {"model_type": "gemma", "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
            "hidden_size": 3072, "head_dim": 256, "torch_dtype": "bfloat16"}


def test_kv_per_token_llama_without_kv_heads_uses_the_attention_heads():
    assert kv_bytes_per_token(LLAMA2_7B) == 2 * 32 * 32 * 128 * 2  # 512 KiB


def test_kv_per_token_gqa():
    assert kv_bytes_per_token(LLAMA3_8B) == 2 * 32 * 8 * 128 * 2  # 128 KiB


def test_kv_per_token_explicit_head_dim_wins_over_hidden_over_heads():
    assert kv_bytes_per_token(GEMMA_7B) == 2 * 28 * 16 * 256 * 2


def test_kv_per_token_reads_a_nested_text_config():
    config = {"model_type": "llava", "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24},
              "text_config": {"num_hidden_layers": 40, "num_attention_heads": 40, "num_key_value_heads": 8,
                              "hidden_size": 5120, "torch_dtype": "bfloat16"}}
    assert kv_bytes_per_token(config) == 2 * 40 * 8 * 128 * 2


def test_kv_per_token_dtype_and_quantization():
    assert kv_bytes_per_token({**LLAMA3_8B, "torch_dtype": "float32"}) == 2 * 32 * 8 * 128 * 4
    assert kv_bytes_per_token({**LLAMA3_8B, "torch_dtype": None}) == 2 * 32 * 8 * 128 * 2  # default 16-bit
    quantized = {**LLAMA3_8B, "torch_dtype": "float32", "quantization": {"bits": 4, "group_size": 64}}
    assert kv_bytes_per_token(quantized) == 2 * 32 * 8 * 128 * 2


def test_kv_per_token_counts_only_full_attention_layers():
    layer_types = ["sliding_attention"] * 5 + ["full_attention"]
    assert kv_bytes_per_token({**GEMMA_7B, "num_hidden_layers": 6, "layer_types": layer_types}) == 2 * 16 * 256 * 2
    pattern = {**GEMMA_7B, "num_hidden_layers": 12, "sliding_window": 1024, "sliding_window_pattern": 6}
    assert kv_bytes_per_token(pattern) == 2 * 2 * 16 * 256 * 2


def test_kv_per_token_mla_caches_one_latent():
    deepseek = {"num_hidden_layers": 61, "num_attention_heads": 128, "hidden_size": 7168, "kv_lora_rank": 512,
                "qk_rope_head_dim": 64, "torch_dtype": "bfloat16"}
    assert kv_bytes_per_token(deepseek) == 61 * (512 + 64) * 2


def test_kv_per_token_unknown_shape_is_none():
    assert kv_bytes_per_token({}) is None
    assert kv_bytes_per_token({"num_hidden_layers": 4}) is None


def test_max_context_that_fits():
    gb = 10**9
    fits = max_context_that_fits(model_context=131072, available_bytes=16 * gb, weights_bytes=5 * gb,
                                 kv_per_token=131072)
    assert fits == int((16 * gb - 5.5 * gb) // 131072)  # memory-bound: 80,108
    assert max_context_that_fits(model_context=32768, available_bytes=64 * gb, weights_bytes=5 * gb,
                                 kv_per_token=131072) == 32768
    assert max_context_that_fits(model_context=32768, available_bytes=8 * gb, weights_bytes=8 * gb,
                                 kv_per_token=131072) == 0


# ---- pure: schema check and verdicts -----------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                           "unit": {"enum": ["c", "f"]}},
          "required": ["city"], "additionalProperties": False}


@pytest.mark.parametrize("arguments, problem", [
    ({"city": "Paris"}, None),
    ({"city": "Paris", "days": 3, "unit": "c"}, None),
    ({}, "misses required 'city'"),
    ({"city": 3}, "arguments.city should be string"),
    ({"city": "Paris", "days": True}, "arguments.days should be integer"),
    ({"city": "Paris", "unit": "k"}, "should be one of"),
    ({"city": "Paris", "country": "FR"}, "unexpected 'country'"),
])
def test_schema_errors(arguments, problem):
    errors = schema_errors(arguments, SCHEMA)
    if problem is None:
        assert errors == []
    else:
        assert any(problem in error for error in errors), errors


def test_verdicts():
    ok = CheckLine("files", "ok", "fine")
    warn = CheckLine("speed", "warn", "slow")
    fail = CheckLine("memory", "fail", "too big")
    skipped = CheckLine("speed", "fail", "skipped: model did not load")
    assert CheckReport("m", "/p", [ok], {}).verdict == "m is fit for Claude Code on this machine."
    warned = CheckReport("m", "/p", [ok, warn], {})
    assert warned.fit_for_claude_code and "with warnings (speed)" in warned.verdict
    failed = CheckReport("m", "/p", [ok, warn, fail, skipped], {})
    assert not failed.fit_for_claude_code
    assert failed.verdict == "m is not fit for Claude Code on this machine (failed: memory)."


def test_check_in_an_80_column_terminal_keeps_every_line_whole(tiny_model_dir):
    """Under the spinner each report line is printed whole: its status and step are on the screen, and no log
    record lands in the middle of the report."""
    from support.terminal import screen_of

    code, lines = screen_of(["models", "check", str(tiny_model_dir)], columns=80)
    report = [line for line in lines if line.startswith("  ")]
    steps = [line[8:22].strip() for line in report]
    assert {"files", "load", "chat template", "context", "speed"} <= set(steps), lines
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in report), lines
    assert len(steps) == len(set(steps)), lines  # no step printed twice over a half-drawn line
    assert not any('"event":' in line for line in lines), lines  # no JSON log record
    assert code in (0, 1)
