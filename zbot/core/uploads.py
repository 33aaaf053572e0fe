"""An image someone uploads to start from (issue 28: "your own picture"): bytes in, a plain RGB picture out,
or a BadInput with one sentence that says what is allowed.

Hostile or awkward files are handled here, before anything reaches the engine:
- only what Pillow decodes as PNG, JPEG, WebP or GIF (the first frame of an animation); anything else,
  whatever its name, is refused;
- a byte cap (`read_capped` enforces it while the front end streams the download, and with a timeout);
- a pixel cap read from the header, before a single pixel is decoded (decompression bombs: a few kB of PNG
  that would unpack to gigabytes);
- EXIF orientation applied (a phone's portrait photo is stored sideways); alpha flattened onto white;
  CMYK, 16-bit and palette images converted to 8-bit RGB.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable

import numpy as np
from PIL import Image, ImageOps

from zbot.core.imaging import encode_png
from zbot.core.jobs import BadInput

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_BYTES = 16 * 2**20  # more than Discord's 10 MB upload limit for most servers: a cap, not a squeeze
MAX_PIXELS = 4096 * 4096  # what a 2048x2048 draw starts from at most, with room; a bomb claims far more
DOWNLOAD_TIMEOUT_S = 30.0


def _megabytes(count: int) -> str:
    return f"{count / 2**20:g}"


def check_declared_size(size: int | None, max_bytes: int = MAX_BYTES) -> None:
    """Refuse a file by the size its sender declares (Discord's attachment.size), before downloading."""
    if size is not None and size > max_bytes:
        raise BadInput("upload.too_big", {"mb": _megabytes(max_bytes)})


async def read_capped(chunks: AsyncIterable[bytes], max_bytes: int = MAX_BYTES,
                      timeout_s: float | None = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The chunks of a download joined, stopped as soon as they pass `max_bytes` (a declared size can lie)
    or the whole download takes longer than `timeout_s`."""
    parts, total = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes:
                    check_declared_size(total, max_bytes)
                parts.append(chunk)
    except TimeoutError:
        raise BadInput("upload.timeout", {"seconds": f"{timeout_s:g}"}) from None
    return b"".join(parts)


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The picture in `data` as 8-bit RGB, upright, on white where it was transparent."""
    check_declared_size(len(data), max_bytes)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            # The header is read, no pixel yet: refuse a bomb by its claimed size before decoding it.
            width, height = image.size
            if width * height > max_pixels:
                raise BadInput("upload.pixels", {"width": width, "height": height,
                                                 "megapixels": f"{max_pixels / 1e6:.0f}"})
            image.seek(0)  # an animation's first frame (the default; said for the reader)
            image.load()
            return _rgb(_upright(image))
    except Image.DecompressionBombError:  # past Pillow's own limit, refused by it while reading the header
        raise BadInput("upload.bomb", {"megapixels": f"{max_pixels / 1e6:.0f}"}) from None
    except Image.UnidentifiedImageError:
        raise BadInput("upload.unreadable") from None
    except (OSError, SyntaxError):  # truncated or corrupt data (SyntaxError: a broken PNG chunk, say)
        raise BadInput("upload.damaged") from None


def _upright(image: Image.Image) -> Image.Image:
    """Turned as its EXIF orientation says; as stored when the EXIF block itself is broken (Pillow parses it
    as TIFF and raises SyntaxError): the picture is fine, only its metadata isn't."""
    try:
        return ImageOps.exif_transpose(image)
    except SyntaxError:
        return image


def _rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit and 32-bit grey scaled down (not clipped at 255), CMYK and palettes converted,
    transparency composited onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        levels = np.asarray(image).astype(np.int64)
        image = Image.fromarray((np.clip(levels, 0, 65535) >> 8).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def upload_png(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> bytes:
    """`decode`, as the PNG that a job's Source keeps (zbot.core.jobs.Source.png)."""
    return encode_png(decode(data, max_bytes=max_bytes, max_pixels=max_pixels))
