"""Load an mlx-lm model directory and describe it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxclaude.engine.backend import ModelInfo
from mlxclaude.parsing.tools import detect_tool_format

DEFAULT_CONTEXT = 32768
CONTEXT_KEYS = ("max_position_embeddings", "max_sequence_length", "seq_length", "n_ctx", "sliding_window_size")
VISION_KEYS = ("vision_config", "vision_tower", "mm_projector_type")


class ModelLoadError(Exception):
    pass


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any  # mlx_lm TokenizerWrapper
    info: ModelInfo
    config: dict


def read_config(path: Path) -> dict:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} has no config.json; pass an mlx-lm model directory")
    return json.loads(config_file.read_text())


def context_length_of(config: dict) -> int:
    text_config = config.get("text_config") or {}
    for source in (config, text_config):
        for key in CONTEXT_KEYS[:4]:
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return DEFAULT_CONTEXT


def load_model(path: str | Path, *, name: str | None = None, context_limit: int | None = None,
               tool_format: str | None = None) -> LoadedModel:
    """Load the mlx-lm model directory `path` (names and repo ids are resolved by mlxclaude.models.resolve
    first); `tool_format` names a format in parsing.tools.FORMATS_BY_NAME to use instead of detecting it."""
    from mlx_lm import load as mlx_load

    if tool_format:
        try:
            detect_tool_format(None, override=tool_format)  # a bad name fails before the weights load
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
    model_path = Path(path).expanduser()
    if not model_path.is_dir():
        raise ModelLoadError(f"model directory not found: {model_path}")
    config = read_config(model_path)
    try:
        model, tokenizer = mlx_load(str(model_path))
    except Exception as exc:  # mlx-lm raises a mix of ValueError/FileNotFoundError/KeyError
        raise ModelLoadError(f"could not load {model_path}: {exc}") from exc
    context = context_length_of(config)
    if context_limit:
        context = min(context, context_limit)
    template = getattr(tokenizer, "chat_template", None) or getattr(tokenizer._tokenizer, "chat_template", None)
    try:
        detected = detect_tool_format(template if isinstance(template, str) else None, override=tool_format)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    info = ModelInfo(
        name=name or model_path.name,
        path=str(model_path),
        context_length=context,
        supports_vision=any(key in config for key in VISION_KEYS),
        think_open=tokenizer.think_start if tokenizer.has_thinking else None,
        think_close=tokenizer.think_end if tokenizer.has_thinking else None,
        tool_format=detected,
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, config=config)
