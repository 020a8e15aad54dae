"""A model's tokenizer and chat template without its weights: renders a request as MlxBackend.render does.

`mlxclaude run`, `up` and `doctor` use it to count how many tokens Claude Code's prompt takes with a model
before anything loads the model (models/context_fit.py); it costs the tokenizer's load, not the weights'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from mlxclaude.engine.backend import RenderedPrompt
from mlxclaude.engine.loader import ModelLoadError, read_config
from mlxclaude.engine.render import render_chat
from mlxclaude.parsing.tools import ToolFormat, detect_tool_format
from mlxclaude.protocol.chat import ChatRequest


class TokenizerOnly:
    """The tokenizer mlx-lm would load for the model directory `path` (same files, same EOS ids), with the
    thinking markers and tool format the loader would detect."""

    def __init__(self, path: str | Path) -> None:
        model_path = Path(path).expanduser()
        config = read_config(model_path)
        try:
            from mlx_lm.utils import load_tokenizer

            self.tokenizer: Any = load_tokenizer(model_path, eos_token_ids=config.get("eos_token_id"))
        except Exception as exc:  # transformers raises a mix of OSError/ValueError/KeyError on broken files
            raise ModelLoadError(f"could not load the tokenizer of {model_path}: {exc}") from exc
        tokenizer = self.tokenizer
        quiet_length_warning(tokenizer)
        template = getattr(tokenizer, "chat_template", None) or getattr(
            getattr(tokenizer, "_tokenizer", None), "chat_template", None)
        try:
            self.tool_format: Optional[ToolFormat] = detect_tool_format(template if isinstance(template, str) else None)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
        thinking = getattr(tokenizer, "has_thinking", False)
        self.think_open: Optional[str] = tokenizer.think_start if thinking else None
        self.think_close: Optional[str] = tokenizer.think_end if thinking else None

    def render(self, chat: ChatRequest) -> RenderedPrompt:
        return render_chat(self.tokenizer, chat, self.think_open, self.think_close, tool_format=self.tool_format)


def quiet_length_warning(tokenizer: Any) -> None:
    """No "Token indices sequence length is longer than …" from transformers when a prompt longer than the
    model's context is only counted (the count is what tells the user it is too long)."""
    for candidate in (tokenizer, getattr(tokenizer, "_tokenizer", None)):
        warned = getattr(candidate, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True
