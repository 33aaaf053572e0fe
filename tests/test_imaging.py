"""The PNG writer: lossless, deterministic, valid for strict decoders, and fast where it matters."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from zbot.core import imaging
from zbot.core.imaging import encode_png, filter_rows


def _photo_like(width: int = 320, height: int = 200) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 23) * np.cos(y / 31), 255 * x / width, 255 * (1 - y / height)], -1)
    rgb += np.random.default_rng(0).normal(0, 3, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _noise(width: int = 257, height: int = 131, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, channels), dtype=np.uint8)


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_round_trips_losslessly(mode: str):
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    noise = _noise(channels=channels)
    noise = noise[:, :, 0] if channels == 1 else noise
    for image in (_photo_like().convert(mode), Image.fromarray(noise)):
        data = encode_png(image)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        back = _decode(data)
        assert back.mode == mode and back.size == image.size
        assert np.array_equal(np.asarray(back), np.asarray(image))


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (7, 1), (16, 16)])
def test_tiny_and_one_pixel_images(size: tuple[int, int]):
    image = Image.fromarray(_noise(*size))
    assert np.array_equal(np.asarray(_decode(encode_png(image))), np.asarray(image))


def test_other_modes_go_through_pillow():
    for image in (_photo_like().convert("P"), _photo_like().convert("1"), Image.new("I;16", (9, 5), 300)):
        back = _decode(encode_png(image))
        assert back.mode == image.mode
        assert np.array_equal(np.asarray(back), np.asarray(image))


def test_same_image_same_bytes():
    image = _photo_like()
    assert encode_png(image) == encode_png(image.copy())
    assert encode_png(image) != encode_png(image.rotate(180))


def test_the_stream_is_well_formed():
    """Chunk CRCs, one zlib stream, Up-filtered scanlines: what strict decoders (libpng) check."""
    image = _photo_like(64, 48)
    data = encode_png(image)
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        offset += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (64, 48, 8, 2, 0, 0, 0)
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(48, 1 + 64 * 3)
    assert (raw[:, 0] == 2).all()  # every row uses the Up filter
    assert np.array_equal(raw, filter_rows(np.asarray(image)))


def test_the_standard_zlib_fallback_is_lossless_too(monkeypatch: pytest.MonkeyPatch):
    image = _photo_like()
    monkeypatch.setattr(imaging, "_deflate", zlib)
    assert np.array_equal(np.asarray(_decode(encode_png(image))), np.asarray(image))


def test_a_1024_image_stays_far_under_discords_limit():
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    assert len(encode_png(image)) < 10 * 2**20  # even pure noise (~3.2 MB)
