"""Shared fixtures for the constraint tests: an llguidance tokenizer from the tiny model, Claude Code's tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def cc_tools() -> list[dict]:
    """Claude Code's Bash/Edit/Glob/Grep/Read/Write as it sends them (recorded from the real binary, HF form)."""
    return json.loads((HERE / "claude_code_tools.json").read_text())


@pytest.fixture(scope="session")
def cc_default_tools() -> list[dict]:
    """Claude Code's default tool set (no --tools), recorded the same way."""
    return json.loads((HERE / "claude_code_default_tools.json").read_text())


@pytest.fixture(scope="session")
def lltok(tiny_model_dir):
    llguidance = pytest.importorskip("llguidance")
    from tokenizers import Tokenizer

    text = Tokenizer.from_file(str(Path(tiny_model_dir) / "tokenizer.json")).to_str()
    return llguidance.LLTokenizer(text, eos_token=[0, 2])


@pytest.fixture(scope="session")
def specials(lltok) -> dict[str, int]:
    """The tiny model's one-token markers (added tokens, special to llguidance)."""
    found = {}
    for text in ("<tool_call>", "</tool_call>", "<think>", "</think>"):
        ids = lltok.tokenize_str(text)
        if len(ids) == 1 and lltok.is_special_token(ids[0]):
            found[text] = ids[0]
    return found


@pytest.fixture(scope="session")
def matches(lltok):
    """matches(grammar, text) -> True when the whole text is a complete sentence of the grammar."""
    import llguidance

    def run(grammar: str, text: str) -> bool:
        matcher = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        assert not matcher.is_error(), matcher.get_error()
        return matcher.consume_tokens(lltok.tokenize_str(text)) and matcher.is_accepting()

    return run
