"""Hugging Face safetensors model directory → mlx-lm model directory, with mlx-lm's own convert."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Optional

from mlxclaude.errors import MlxClaudeError


class ConvertImportError(MlxClaudeError):
    """A directory that mlx-lm cannot convert (not a model, unsupported architecture...)."""


def convert_directory(source: Path, out: Path, *, quantize: Optional[int], group_size: int,
                      dtype: Optional[str]) -> None:
    """Write the converted model into `out`, which must not exist yet (mlx_lm.convert refuses one that does)."""
    from mlx_lm import convert

    try:
        with contextlib.redirect_stdout(sys.stderr):  # mlx-lm prints [INFO] lines
            convert(hf_path=str(source), mlx_path=str(out), quantize=quantize is not None,
                    q_bits=quantize, q_group_size=group_size if quantize else None, dtype=dtype)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        raise ConvertImportError(
            f"mlx-lm could not convert {source}: {exc}",
            hint="check that the directory is a complete Hugging Face model (config.json, *.safetensors, "
                 "tokenizer files) of an architecture mlx-lm supports",
        ) from exc


def default_dtype() -> Optional[str]:
    """float32 when mlx runs on the CPU only (there bfloat16 / float16, and quantized layers with such
    scales, decode ten to forty times slower); None (the checkpoint's dtype) with Metal or CUDA."""
    import mlx.core as mx

    return "float32" if mx.default_device() == mx.cpu else None


def supported_by_mlx_lm(config: dict[str, Any]) -> bool:
    """Whether mlx-lm implements the model_type of `config` (its own resolution, remappings included)."""
    from mlx_lm.utils import _get_classes

    try:
        _get_classes(config)
    except (ValueError, ImportError):
        return False
    return True
