"""The backend for a local model directory: mlx-vlm for a vision model (when the `vision` extra is installed),
mlx-lm otherwise (a vision model's language model then reads a placeholder for each image)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mlxclaude.engine.loader import VISION_EXTRA_HINT, is_vision_config, model_dir, read_config, vision_engine_installed
from mlxclaude.logs import log_event

if TYPE_CHECKING:
    from mlxclaude.engine.backend import Backend


def sees_images(path: str | Path) -> bool:
    """Whether the model at `path` will be given images: a vision model, and mlx-vlm to run it."""
    return is_vision_config(read_config(model_dir(path))) and vision_engine_installed()


def open_local_backend(path: str | Path, *, name: Optional[str] = None, context_limit: Optional[int] = None,
                       prefill_step_size: int = 2048, constrain_tools: bool = True,
                       cache_max_bytes: Optional[int] = None, prompt_cache_dir: Optional[Path] = None,
                       speculative: str = "auto", draft_model: Optional[str] = None) -> "Backend":
    config = read_config(model_dir(path))
    if is_vision_config(config):
        if vision_engine_installed():
            from mlxclaude.engine.vision_backend import VisionBackend

            return VisionBackend(str(path), name=name, context_limit=context_limit,
                                 prefill_step_size=prefill_step_size, constrain_tools=constrain_tools)
        log_event("vision_unavailable", kind="daemon", level="warning", model=name or Path(path).name,
                  note=f"loaded as a text model: each image becomes a placeholder; {VISION_EXTRA_HINT}")
    from mlxclaude.engine.mlx_backend import MlxBackend

    return MlxBackend(str(path), name=name, context_limit=context_limit, prefill_step_size=prefill_step_size,
                      constrain_tools=constrain_tools, cache_max_bytes=cache_max_bytes,
                      prompt_cache_dir=prompt_cache_dir, speculative=speculative, draft_model=draft_model)
