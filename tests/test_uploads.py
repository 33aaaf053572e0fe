"""Uploads (zbot.core.uploads): hostile and awkward files built on the spot, each refused in one sentence
or turned into a plain RGB picture."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from zbot.core import uploads
from zbot.core.jobs import BadInput


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims width x height pixels, with a few bytes of data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def refusal(data: bytes, **caps) -> str:
    with pytest.raises(BadInput) as caught:
        uploads.decode(data, **caps)
    return caught.value.message


def test_a_bomb_is_refused_by_its_header_before_any_pixel_is_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    started = time.perf_counter()
    assert refusal(png_claiming(5000, 5000)) == "That image is 5000x5000 pixels; send one of at most 17 megapixels."
    assert refusal(png_claiming(100_000, 100_000)) == ("That image has too many pixels; send one of at most 17 "
                                                       "megapixels.")  # past Pillow's own limit
    assert decoded == [] and time.perf_counter() - started < 1


def test_what_isnt_a_png_jpeg_webp_or_gif_is_refused_whatever_its_name():
    not_image = "That file isn't an image I can read; send a PNG, JPEG, WebP or GIF."
    assert refusal(b"hello, this is a text file named cat.png\n") == not_image
    assert refusal(saved(Image.new("RGB", (8, 8)), "BMP")) == not_image  # Pillow reads BMP; we don't
    assert refusal(saved(Image.new("RGB", (8, 8)), "TIFF")) == not_image


def test_a_truncated_file_is_refused_as_damaged():
    whole = saved(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    damaged = "That image file is damaged or incomplete; send it again as a PNG, JPEG, WebP or GIF."
    assert refusal(whole[: len(whole) // 2]) == damaged
    jpeg = saved(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")
    assert refusal(jpeg[: len(jpeg) // 2]) == damaged


def test_too_many_bytes_are_refused_before_decoding():
    data = saved(Image.effect_noise((1024, 1024), 80).convert("RGB"), "PNG")  # ~2.5 MB of noise
    assert refusal(data, max_bytes=2**20) == "That file is larger than 1 MB; send an image of at most 1 MB."
    with pytest.raises(BadInput, match="larger than 16 MB"):
        uploads.check_declared_size(16 * 2**20 + 1)


def test_exif_orientation_is_applied():
    """A phone's portrait photo: stored 64 wide and 32 high, red on the left, with 'rotate 90' in EXIF."""
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns it 90 degrees clockwise
    upright = uploads.decode(saved(stored, "JPEG", exif=exif, quality=95))
    assert upright.size == (32, 64)
    top, bottom = upright.getpixel((16, 8)), upright.getpixel((16, 56))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the left (red) half is now on top


def test_a_broken_exif_block_leaves_the_picture_as_stored():
    """Pillow parses EXIF as TIFF and raises SyntaxError on a bad header: the pixels are fine, so keep them."""
    data = saved(Image.new("RGB", (16, 8), (255, 0, 0)), "PNG", exif=b"Exif\x00\x00M)\x00*\x00\x00\x00\x08junk")
    image = uploads.decode(data)
    assert image.size == (16, 8) and image.getpixel((4, 4)) == (255, 0, 0)


def test_cmyk_16_bit_palette_and_alpha_become_plain_rgb():
    cmyk = uploads.decode(saved(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    assert cmyk.mode == "RGB" and cmyk.getpixel((8, 8))[0] > 240 and cmyk.getpixel((8, 8))[1] < 15
    # 16-bit grey: a ramp over the whole 0-65535 range; clipping at 255 would make it all white.
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    grey = np.asarray(uploads.decode(saved(Image.fromarray(ramp), "PNG")))
    assert grey.shape == (64, 64, 3) and grey.min() == 0 and 250 <= grey.max() <= 255 and 120 < grey.mean() < 136
    # Transparent pixels end up white, not black.
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 8, 16))
    flat = uploads.decode(saved(rgba, "PNG"))
    assert flat.getpixel((12, 8)) == (255, 255, 255) and flat.getpixel((4, 8)) == (0, 0, 255)
    palette = uploads.decode(saved(rgba.convert("P"), "PNG"))
    assert palette.mode == "RGB" and palette.getpixel((4, 8)) == (0, 0, 255)
    webp = uploads.decode(saved(rgba, "WEBP", lossless=True))
    assert webp.getpixel((12, 8)) == (255, 255, 255)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = uploads.decode(data)
    assert first.mode == "RGB" and first.getpixel((8, 8)) == (255, 0, 0)
    png = uploads.upload_png(data)
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).getpixel((8, 8)) == (255, 0, 0)


def test_fuzzed_files_raise_nothing_but_a_refusal():
    """Random bytes changed and files cut short, in every format: each decodes or is refused in one line."""
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    originals = [saved(base, fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF")]
    for index in range(400):
        data = bytearray(originals[index % 4])
        for at in rng.integers(0, len(data), int(rng.integers(1, 6))):
            data[at] = int(rng.integers(0, 256))
        if index % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        try:
            assert uploads.decode(bytes(data)).mode == "RGB"
        except BadInput:
            pass


def chunks(parts: list[bytes], pause: float = 0.0):
    async def stream():
        for part in parts:
            if pause:
                await asyncio.sleep(pause)
            yield part
    return stream()


async def test_a_download_stops_at_the_byte_cap_even_when_the_declared_size_lied():
    read = []

    async def stream():
        for _ in range(1000):  # 1000 kB offered; the cap is 100 kB
            read.append(1)
            yield b"x" * 1024

    with pytest.raises(BadInput, match="larger than"):
        await uploads.read_capped(stream(), max_bytes=100 * 1024)
    assert len(read) == 101  # stopped at the first chunk past the cap
    assert await uploads.read_capped(chunks([b"ab", b"cd"]), max_bytes=4) == b"abcd"


async def test_a_slow_download_times_out_in_one_sentence():
    with pytest.raises(BadInput) as caught:
        await uploads.read_capped(chunks([b"a"] * 50, pause=0.02), timeout_s=0.1)
    assert caught.value.message == ("The image took more than 0.1 seconds to download; send a smaller file or try "
                                    "again later.")
