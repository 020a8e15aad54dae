"""Images written by tests: seeded random pixels, so two seeds of one size differ only in content."""

from __future__ import annotations

import base64
import io


def png_bytes(seed: int = 0, size: tuple[int, int] = (120, 80)) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def png_base64(seed: int = 0, size: tuple[int, int] = (120, 80)) -> str:
    return base64.b64encode(png_bytes(seed, size)).decode()


def image_block(seed: int = 0, size: tuple[int, int] = (120, 80)) -> dict:
    """An Anthropic image content block."""
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png_base64(seed, size)}}


def image_part(seed: int = 0, size: tuple[int, int] = (120, 80)) -> dict:
    """The typed request's image part (protocol/content_parts.py)."""
    return {"type": "image", "media_type": "image/png", "data": png_base64(seed, size)}
