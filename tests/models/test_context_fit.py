"""Claude Code's recorded prompt against a model's context (models/context_fit.py): measured with the model's own
tokenizer and chat template, on the real SmolLM2 (8k context: unfit) and the tiny model (32k: fits, tightly)."""

from __future__ import annotations

import json
import shutil

import pytest

from mlxclaude.models import context_fit as fit_module
from mlxclaude.models.context_fit import (
    CONVERSATION_ROOM,
    REPLY_ROOM,
    ContextFit,
    ContextUnknown,
    claude_code_chat,
    context_fit,
    fit_without_loading,
)


def test_the_recorded_request_is_claude_codes_full_prompt():
    chat = claude_code_chat()
    assert len(chat.tools) == 25
    names = {tool["function"]["name"] for tool in chat.tools}
    assert {"Bash", "Read", "Edit", "Write", "Agent", "WebFetch"} <= names
    assert chat.messages[0]["role"] == "system" and "Claude" in chat.messages[0]["content"]
    assert any(message.get("tool_calls") for message in chat.messages)  # a main turn with a tool round trip


@pytest.mark.mlx
def test_smollm2_cannot_hold_claude_codes_prompt(smollm2_model_dir):
    fit = context_fit(smollm2_model_dir, name="SmolLM2")
    # 21,653 with SmolLM2's tokenizer as imported today; a range, so a re-import that shifts it a little still passes
    assert 15_000 < fit.prompt_tokens < 30_000
    assert fit.model_context == fit.available == 8192 and fit.limited_by == "model"
    assert fit.needed == fit.prompt_tokens + REPLY_ROOM
    assert fit.status == "fail" and not fit.fits
    assert fit.detail() == (f"Claude Code needs {fit.needed:,} tokens ({fit.prompt_tokens:,} for its system prompt "
                            f"and tools with this tokenizer + 4,096 for a reply), but the model's context is 8,192")
    error = fit.refusal("mlxclaude up")
    assert error.message.startswith("SmolLM2 cannot run Claude Code: Claude Code needs")
    assert "`mlxclaude up --model mlx-community/" in error.hint and "--force" in error.hint
    print(f"SmolLM2: Claude Code's prompt is {fit.prompt_tokens:,} tokens")


@pytest.mark.mlx
def test_the_tiny_model_fits_with_little_room(tiny_model_dir):
    fit = context_fit(tiny_model_dir, available_bytes=64 * 2**30)
    assert (fit.prompt_tokens, fit.needed, fit.available) == (27379, 27379 + 4096, 32768)
    assert fit.status == "warn" and fit.fits and fit.advice() is None
    assert "leaves 5,389 tokens for the conversation" in fit.detail()


@pytest.mark.mlx
def test_the_count_is_remembered_per_tokenizer(tiny_model_dir, tmp_path, monkeypatch):
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, copy)
    first = context_fit(copy).prompt_tokens

    from mlxclaude.engine import tokenizer_only

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer was loaded again")

    monkeypatch.setattr(tokenizer_only.TokenizerOnly, "__init__", refuse)
    assert context_fit(copy).prompt_tokens == first  # no tokenizer load

    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}{{ m.content }}{% endfor %}"  # another template: measured again
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(AssertionError, match="loaded again"):
        context_fit(copy)


@pytest.mark.mlx
def test_a_broken_tokenizer_is_unknown_not_a_fit(tiny_model_dir, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {},
                                                                                   "merges": []}}))
    with pytest.raises(ContextUnknown):
        context_fit(copy)
    assert fit_without_loading(copy) is None
    assert fit_without_loading(tmp_path / "nowhere") is None


# ---- pure: the verdicts --------------------------------------------------------------------------


def fit(**fields) -> ContextFit:
    return ContextFit(**{"model": "m", "prompt_tokens": 20_000, "model_context": 131_072, **fields})


def test_statuses_by_room_left():
    assert fit().status == "ok"
    assert fit(model_context=20_000 + CONVERSATION_ROOM).status == "ok"
    assert fit(model_context=20_000 + CONVERSATION_ROOM - 1).status == "warn"
    assert fit(model_context=20_000 + REPLY_ROOM).status == "warn"
    assert fit(model_context=20_000 + REPLY_ROOM - 1).status == "fail"


def test_memory_and_context_limit_bound_the_context():
    by_memory = fit(memory_context=12_000, available_bytes=3 * 2**30, weights_bytes=2**30)
    assert (by_memory.available, by_memory.limited_by, by_memory.status) == (12_000, "memory", "fail")
    assert "only 12,000 tokens of context fit in free memory beside the weights (3.0 GiB free)" in by_memory.detail()
    assert by_memory.advice().startswith("close other programs to free memory")
    no_room = fit(memory_context=0, available_bytes=2**30)
    assert "the weights alone do not fit in free memory" in no_room.detail()

    limited = fit(context_limit=16_384)
    assert (limited.available, limited.limited_by, limited.status) == (16_384, "context_limit", "fail")
    assert "the context_limit setting caps the context at 16,384" in limited.detail()
    assert "mlxclaude config set context_limit 24096" in limited.advice()

    roomy = fit(memory_context=200_000, context_limit=100_000)
    assert (roomy.available, roomy.limited_by, roomy.status) == (100_000, "context_limit", "ok")


def test_the_advice_names_a_recommended_model_other_than_the_one_refused(monkeypatch):
    from mlxclaude.models import recommend

    pick = recommend.RECOMMENDATIONS[0]
    monkeypatch.setattr(recommend, "recommended_model", lambda *a, **k: pick)
    assert f"`mlxclaude run --model {pick.repo}`" in fit(model_context=8192).advice()
    assert fit(model="x", model_context=8192).refusal("mlxclaude up").hint.startswith(
        f"use a model with a longer context, e.g. `mlxclaude up --model {pick.repo}`")
    same = fit(model=pick.repo, model_context=8192)
    assert same.advice() == "use a model with a longer context"


def test_the_request_file_is_packaged():
    assert fit_module.REQUEST_FILE.is_file()
    assert fit_module.REQUEST_FILE.stat().st_size < 64 * 1024
