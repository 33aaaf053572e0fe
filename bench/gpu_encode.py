"""Encoding the bot's 1024x1024 output: zbot.core.imaging.encode_png against the other ways to write a
picture Discord shows inline (PNG, WebP, JPEG), on a noise-like and a photo-like image.

    python bench/gpu_encode.py [--out bench/results]

Libraries that aren't installed are skipped (pip install isal zlib-ng deflate opencv-python-headless
imagecodecs simplejpeg scikit-image to see them all). Prints a table, then one JSON line; writes the
JSON to --out as gpu-encode-<machine>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.core.imaging import PNG_BACKEND, encode_png, filter_rows  # noqa: E402


def noise_like(size: int) -> Image.Image:
    """What random weights draw: smooth-ish colour noise (the tiny model's output looks the same)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC)).astype(np.int16)
    return Image.fromarray(np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8))


def photo_like(size: int) -> tuple[Image.Image, str]:
    try:
        from skimage import data

        return Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC), "astronaut 512->1024"
    except Exception:
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        rgb = np.stack([128 + 100 * np.sin(x / 97) * np.cos(y / 131), 255 * x / size,
                        255 * (1 - y / size)], -1)
        rgb += np.random.default_rng(0).normal(0, 2, rgb.shape)
        return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), "synthetic gradients"


def png_from(scanlines: np.ndarray, width: int, height: int, deflate) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", deflate(scanlines))
            + chunk(b"IEND", b""))


def encoders(image: Image.Image) -> dict:
    pixels = np.asarray(image)
    width, height = image.size

    def pillow(**options):
        def encode():
            buffer = io.BytesIO()
            image.save(buffer, **options)
            return buffer.getvalue()
        return encode

    found = {
        f"zbot.core.imaging.encode_png (Up filter + {PNG_BACKEND} level 1)": lambda: encode_png(image),
        "Pillow PNG level 6 (default)": pillow(format="PNG"),
        "Pillow PNG level 1": pillow(format="PNG", compress_level=1),
        "Pillow PNG level 1, Z_RLE": pillow(format="PNG", compress_level=1, compress_type=3),
        "Pillow PNG level 0 (stored)": pillow(format="PNG", compress_level=0),
        "Up filter + stdlib zlib level 1": lambda: png_from(filter_rows(pixels), width, height,
                                                           lambda d: zlib.compress(d, 1)),
        "Pillow WebP lossless method 0": pillow(format="WEBP", lossless=True, method=0, quality=0),
        "Pillow JPEG q95 (lossy)": pillow(format="JPEG", quality=95),
    }
    try:
        from zlib_ng import zlib_ng

        found["Up filter + zlib-ng level 1"] = lambda: png_from(filter_rows(pixels), width, height,
                                                                lambda d: zlib_ng.compress(d, 1))
    except ImportError:
        pass
    try:
        import deflate

        found["Up filter + libdeflate level 1"] = lambda: png_from(filter_rows(pixels), width, height,
                                                                   lambda d: deflate.zlib_compress(d, 1))
    except ImportError:
        pass
    try:
        import cv2

        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        found["OpenCV PNG level 1"] = lambda: cv2.imencode(
            ".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        found["OpenCV PNG level 1, RLE"] = lambda: cv2.imencode(
            ".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                          cv2.IMWRITE_PNG_STRATEGY_RLE])[1].tobytes()
    except ImportError:
        pass
    try:
        import imagecodecs

        found["imagecodecs PNG level 1"] = lambda: imagecodecs.png_encode(pixels, level=1)
    except ImportError:
        pass
    try:
        import simplejpeg

        found["simplejpeg q95 (lossy)"] = lambda: simplejpeg.encode_jpeg(pixels, quality=95)
    except ImportError:
        pass
    return found


def measure(fn, repeats: int) -> tuple[float, bytes]:
    out = fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    photo, photo_kind = photo_like(args.size)
    results = {"machine": f"{platform.machine()} {os.cpu_count()} cpus", "python": platform.python_version(),
               "size": args.size, "photo": photo_kind, "png_backend": PNG_BACKEND, "images": {}}
    for label, image in (("noise", noise_like(args.size)), ("photo", photo)):
        rows = {}
        for name, fn in encoders(image).items():
            seconds, data = measure(fn, args.repeats)
            decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            lossless = "lossy" not in name and np.array_equal(decoded, np.asarray(image))
            rows[name] = {"ms": round(1000 * seconds, 1), "mb": round(len(data) / 1e6, 2),
                          "lossless": lossless}
            print(f"{label:6s} {name:52s} {1000 * seconds:8.1f} ms {len(data) / 1e6:6.2f} MB"
                  f"{'' if lossless or 'lossy' in name else '  NOT LOSSLESS'}", flush=True)
        results["images"][label] = rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"gpu-encode-{platform.machine().lower()}-{os.cpu_count()}cpu.json"
    (out / name).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
