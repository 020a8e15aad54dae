"""A vision-language model through mlx-vlm (the `vision` extra): images in user messages and tool results reach it.

Requests run one at a time (mlx-vlm's batch path does not take our prompt cache, samplers and constraints); the
prompt cache keeps a few conversations keyed by image content (engine/cache/vision_prefix.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional, Sequence

from mlxclaude.engine.backend import GenerationItem, GenerationProgress, GenerationStats, RenderedPrompt
from mlxclaude.engine.cache.vision_prefix import DEFAULT_SLOTS, VisionPrefixCache, content_key
from mlxclaude.engine.constraints import constraint_processors, load_constraints
from mlxclaude.engine.images import ImageError, decode_images
from mlxclaude.engine.loader import load_vision_model
from mlxclaude.engine.mlx_backend import MlxEngine, SpeedFigures, logits_size, speed_of
from mlxclaude.engine.render import render_chat
from mlxclaude.engine.sampling import make_mlx_sampler
from mlxclaude.protocol.chat import ChatRequest, Sampling


@dataclass(frozen=True)
class VisionInputs:
    """What the processor made of a request's images, for generate (RenderedPrompt.media)."""
    pixel_values: Any
    mask: Any
    extra: dict  # model-specific inputs (Qwen's image_grid_thw, …)
    digests: tuple[str, ...]


class VisionBackend(MlxEngine):
    def __init__(self, path: str, *, name: str | None = None, context_limit: int | None = None,
                 prefill_step_size: int = 2048, constrain_tools: bool = True, cache_slots: int = DEFAULT_SLOTS) -> None:
        loaded = load_vision_model(path, name=name, context_limit=context_limit)
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self.prefill_step_size = prefill_step_size
        self.vocab_size = logits_size(self.model.language_model, self.tokenizer)
        self.image_token_ids = image_token_ids(self.model.config, self.processor)
        self.constraints = load_constraints(self.tokenizer, self.info, enabled=constrain_tools)
        self.prefix_cache = VisionPrefixCache(cache_slots)

    def cache_facts(self) -> dict:
        return self.prefix_cache.facts()

    def close(self) -> None:
        self.prefix_cache.clear()

    def render(self, chat: ChatRequest) -> RenderedPrompt:
        prompt = render_chat(self.tokenizer, chat, self.info.think_open, self.info.think_close,
                             tool_format=self.info.tool_format)
        images = decode_images(chat) if chat.has_images else []
        if not images:
            return prompt
        from mlx_vlm.utils import prepare_inputs

        try:
            inputs = prepare_inputs(self.processor, images=[image.image for image in images], prompts=prompt.text,
                                    image_token_index=getattr(self.model.config, "image_token_index", None))
        except Exception as exc:  # the processor's own complaint (image count, sizes) is the useful part
            raise ImageError(f"the model's processor rejected the images: {exc}") from exc
        processed = [int(token) for token in inputs["input_ids"][0].tolist()]
        tokens = with_image_runs(prompt.tokens, processed, self.image_token_ids)
        mask = inputs.get("attention_mask") if tokens == processed else None
        extra = {key: value for key, value in inputs.items() if key not in ("input_ids", "pixel_values", "attention_mask")}
        media = VisionInputs(pixel_values=inputs.get("pixel_values"), mask=mask, extra=extra,
                             digests=tuple(image.digest for image in images))
        return replace(prompt, tokens=tokens, media=media)

    def _generate(self, prompt: RenderedPrompt, chat: ChatRequest, max_tokens: int,
                  cancel: threading.Event, progress: GenerationProgress) -> Iterator[GenerationItem]:
        import mlx.core as mx
        from mlx_vlm import stream_generate

        media: Optional[VisionInputs] = prompt.media
        key = content_key(prompt.tokens, self.image_token_ids, media.digests if media else ())
        state, expected = self.prefix_cache.take(key)
        stats = GenerationStats(prompt_tokens=len(prompt.tokens), cached_tokens=expected)
        progress.begin_prefill(len(prompt.tokens), expected)
        inputs: dict[str, Any] = {"input_ids": mx.array([prompt.tokens])}
        if media is not None:
            inputs.update(media.extra, pixel_values=media.pixel_values)
            if media.mask is not None:
                inputs["mask"] = media.mask
        mx.reset_peak_memory()
        started = time.perf_counter()
        first_token_at: Optional[float] = None
        complete = False
        stats.finish_reason = "length"
        results = stream_generate(self.model, self.processor, prompt.text, max_tokens=max_tokens,
                                  sampler=make_mlx_sampler(chat.sampling, self.vocab_size),
                                  logits_processors=constraint_processors(self.constraints, chat, prompt, max_tokens),
                                  prefill_step_size=self.prefill_step_size, prompt_cache_state=state, **inputs)
        try:
            for result in results:
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    stats.prefill_seconds = stats.ttft_seconds = first_token_at - started
                    stats.cached_tokens = int(result.cached_tokens or 0)
                    progress.cached_tokens = stats.cached_tokens
                    progress.begin_decode()
                if result.finish_reason is None:
                    stats.generated_tokens += 1
                    progress.generated_tokens = stats.generated_tokens
                else:
                    stats.finish_reason = "stop" if result.finish_reason == "stop" else "length"
                if result.text:
                    yield result.text
                if cancel.is_set() and result.finish_reason is None:
                    stats.finish_reason = "cancelled"
                    break
            else:
                complete = True  # mlx-vlm saved the KV cache into `state` after its last result
        finally:
            results.close()
            self.prefix_cache.finished(state, complete=complete, prompt_tokens=len(prompt.tokens),
                                       reused=stats.cached_tokens if first_token_at is not None else 0)
        if first_token_at is not None:
            stats.decode_seconds = time.perf_counter() - first_token_at
        stats.cache_note = f"vision prefix {'hit' if stats.cached_tokens else 'miss'}"
        stats.peak_memory_gb = mx.get_peak_memory() / 1e9
        progress.phase = "done"
        yield stats

    def measure_speed(self, tokens: list[int], decode_tokens: int) -> SpeedFigures:
        """Prefill `tokens` (text) and decode `decode_tokens` greedily from a fresh cache (`models check`)."""
        import mlx.core as mx
        from mlx_vlm.generate import generate_step

        greedy = make_mlx_sampler(Sampling(temperature=0.0), self.vocab_size)
        started = time.perf_counter()
        steps = generate_step(mx.array([tokens]), self.model, None, None, max_tokens=decode_tokens, sampler=greedy,
                              prefill_step_size=self.prefill_step_size)
        return speed_of(steps, len(tokens), started)


def image_token_ids(config: Any, processor: Any) -> frozenset[int]:
    """The ids that stand for image content in the prompt (Qwen's <|image_pad|>, Gemma's soft tokens, …)."""
    found = set()
    for source in (config, processor, getattr(processor, "tokenizer", None)):
        for name in ("image_token_id", "image_token_index"):
            value = getattr(source, name, None)
            if isinstance(value, int):
                found.add(value)
    return frozenset(found)


def with_image_runs(rendered: Sequence[int], processed: Sequence[int], image_ids: frozenset[int]) -> list[int]:
    """The prompt's ids with each image marker grown into the image's tokens.

    `rendered` is the special-token-safe encoding of the template's text (engine/special_tokens.py), one marker
    per image; `processed` is the processor's encoding of the same text, each marker grown into its image's run.
    Where the two agree apart from the runs, they are the same ids. Where the marker is the image token itself
    (Qwen's <|image_pad|>) but other ids differ (a special-token string in the request, kept as text by the
    guard), each marker takes its run. A processor that frames images with tokens of its own (Gemma) keeps its ids."""
    collapsed = collapse_runs(processed, image_ids)
    if collapsed == list(rendered):
        return list(processed)
    runs = image_runs(processed, image_ids)
    markers = [index for index, token in enumerate(rendered) if token in image_ids]
    if len(markers) != len(runs):
        return list(processed)
    expanded: list[int] = []
    run = iter(runs)
    for token in rendered:
        expanded.extend(next(run) if token in image_ids else (token,))
    return expanded


def collapse_runs(tokens: Sequence[int], image_ids: frozenset[int]) -> list[int]:
    return [token for index, token in enumerate(tokens)
            if token not in image_ids or index == 0 or tokens[index - 1] != token]


def image_runs(tokens: Sequence[int], image_ids: frozenset[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for index, token in enumerate(tokens):
        if token in image_ids:
            if index and tokens[index - 1] == token:
                runs[-1].append(token)
            else:
                runs.append([token])
    return runs
