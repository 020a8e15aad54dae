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


def is_vision_config(config: dict) -> bool:
    return any(key in config for key in VISION_KEYS)


def vision_engine_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlx_vlm") is not None


VISION_EXTRA_HINT = "install the vision extra to let it see images: pip install 'mlxclaude[vision]'"


def check_tool_format(tool_format: str | None) -> None:
    if tool_format:
        try:
            detect_tool_format(None, override=tool_format)  # a bad name fails before the weights load
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc


def model_dir(path: str | Path) -> Path:
    model_path = Path(path).expanduser()
    if not model_path.is_dir():
        raise ModelLoadError(f"model directory not found: {model_path}")
    return model_path


def describe(model_path: Path, config: dict, tokenizer: Any, *, name: str | None, context_limit: int | None,
             tool_format: str | None, sees_images: bool) -> ModelInfo:
    """What the server needs to know about a loaded model; `tokenizer` is an mlx-lm TokenizerWrapper."""
    context = context_length_of(config)
    if context_limit:
        context = min(context, context_limit)
    template = getattr(tokenizer, "chat_template", None) or getattr(tokenizer._tokenizer, "chat_template", None)
    try:
        detected = detect_tool_format(template if isinstance(template, str) else None, override=tool_format)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    return ModelInfo(
        name=name or model_path.name,
        path=str(model_path),
        context_length=context,
        supports_vision=sees_images,
        think_open=tokenizer.think_start if tokenizer.has_thinking else None,
        think_close=tokenizer.think_end if tokenizer.has_thinking else None,
        tool_format=detected,
    )


def load_model(path: str | Path, *, name: str | None = None, context_limit: int | None = None,
               tool_format: str | None = None) -> LoadedModel:
    """Load the mlx-lm model directory `path` (names and repo ids are resolved by mlxclaude.models.resolve
    first); `tool_format` names a format in parsing.tools.FORMATS_BY_NAME to use instead of detecting it.
    mlx-lm loads the language model of a vision model without its vision tower: it sees no images."""
    from mlx_lm import load as mlx_load

    check_tool_format(tool_format)
    model_path = model_dir(path)
    config = read_config(model_path)
    try:
        model, tokenizer = mlx_load(str(model_path))
    except Exception as exc:  # mlx-lm raises a mix of ValueError/FileNotFoundError/KeyError
        hint = f"; it is a vision model: {VISION_EXTRA_HINT}" if is_vision_config(config) else ""
        raise ModelLoadError(f"could not load {model_path}: {exc}{hint}") from exc
    info = describe(model_path, config, tokenizer, name=name, context_limit=context_limit, tool_format=tool_format,
                    sees_images=False)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, config=config)


@dataclass
class LoadedVisionModel(LoadedModel):
    processor: Any = None  # the model's processor (mlx-vlm's or transformers'): images to pixels and image tokens


def load_vision_model(path: str | Path, *, name: str | None = None, context_limit: int | None = None,
                      tool_format: str | None = None) -> LoadedVisionModel:
    """Load a vision-language model directory through mlx-vlm (the `vision` extra)."""
    from mlx_lm.tokenizer_utils import load as load_tokenizer
    from mlx_vlm import load as vlm_load

    check_tool_format(tool_format)
    model_path = model_dir(path)
    config = read_config(model_path)
    try:
        model, processor = vlm_load(str(model_path))
        tokenizer = load_tokenizer(model_path, eos_token_ids=config.get("eos_token_id"))
    except Exception as exc:  # mlx-vlm, transformers and the model's code raise what they raise
        raise ModelLoadError(f"could not load {model_path} as a vision model: {exc}") from exc
    info = describe(model_path, config, tokenizer, name=name, context_limit=context_limit, tool_format=tool_format,
                    sees_images=True)
    return LoadedVisionModel(model=model, tokenizer=tokenizer, info=info, config=config, processor=processor)
