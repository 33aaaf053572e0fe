"""Turning a rendered image into the bytes that get posted."""

from __future__ import annotations

import io

from PIL import Image


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG. Level 1 is barely larger than the default level 6 and faster to write."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
