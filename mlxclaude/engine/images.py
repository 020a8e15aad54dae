"""The images of a request, decoded for a vision model: each checked, capped and named by its content."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from typing import Any, Iterator

from mlxclaude.engine.render import RenderError
from mlxclaude.protocol.chat import ChatRequest

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # decoded; Claude Code sends screenshots well under this
MAX_IMAGE_PIXELS = 8000 * 8000  # Anthropic's own largest accepted image


class ImageError(RenderError):
    """An image the model cannot be given: a 400 naming which one and why."""


@dataclass(frozen=True)
class DecodedImage:
    image: Any  # PIL.Image.Image, RGB
    digest: str  # sha256 of the encoded bytes: the prompt cache keys an image's tokens by it


def image_parts(chat: ChatRequest) -> Iterator[dict[str, Any]]:
    """The image parts of every message, in the order the chat template renders them."""
    for message in chat.messages:
        content = message.get("content")
        if isinstance(content, list):
            yield from (part for part in content if isinstance(part, dict) and part.get("type") == "image")


def decode_images(chat: ChatRequest) -> list[DecodedImage]:
    return [decode_image(part, number) for number, part in enumerate(image_parts(chat), start=1)]


def decode_image(part: dict[str, Any], number: int) -> DecodedImage:
    from PIL import Image, UnidentifiedImageError

    if part.get("url"):
        raise ImageError(f"image {number} is a URL; a local model is not given URLs: send the image as base64 data")
    data = part.get("data")
    if not data:
        raise ImageError(f"image {number} has no data (a file id names a file on Anthropic's side): "
                         "send the image as base64 data")
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ImageError(f"image {number} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"image {number} is not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(f"image {number} is {width}x{height} pixels; the most is {MAX_IMAGE_PIXELS:,} pixels")
            image = opened.convert("RGB")
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        media_type = part.get("media_type") or "image"
        raise ImageError(f"image {number} ({media_type}) could not be decoded: {exc}") from None
    return DecodedImage(image=image, digest=hashlib.sha256(raw).hexdigest())
