"""A grid of candidates: a job's images side by side, numbered, as one preview (Pillow).

Two images make a 1x2 grid, three a 1x3, four a 2x2; each tile is its image at half size (full size for
small images), with its number in a corner. A tile the safety check withheld is grey with a line saying
so. Blocking work: call `compose` through asyncio.to_thread.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from zbot.core.imaging import encode_png

GAP = 6
BACKGROUND = (30, 31, 34)
WITHHELD = (90, 92, 98)
BADGE, INK = (0, 0, 0), (255, 255, 255)


def layout(count: int) -> tuple[int, int]:
    """(columns, rows) for a grid of `count` images."""
    return {1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 2)}[count]


def compose(pngs: list[bytes], withheld: frozenset[int] | set[int] = frozenset()) -> bytes:
    """The grid as PNG bytes; `withheld`: the indexes (from 0) shown as grey tiles."""
    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
    width, height = images[0].size
    scale = 2 if width >= 512 and height >= 512 else 1
    tile_w, tile_h = width // scale, height // scale
    columns, rows = layout(len(images))
    canvas = Image.new("RGB", (columns * tile_w + (columns + 1) * GAP, rows * tile_h + (rows + 1) * GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    size = max(12, tile_h // 12)
    font = ImageFont.load_default(size=size)
    for index, image in enumerate(images):
        left = GAP + (index % columns) * (tile_w + GAP)
        top = GAP + (index // columns) * (tile_h + GAP)
        if index in withheld:
            draw.rectangle([left, top, left + tile_w - 1, top + tile_h - 1], fill=WITHHELD)
            draw.text((left + tile_w // 2, top + tile_h // 2), "withheld", fill=INK, font=font, anchor="mm")
        else:
            tile = image if scale == 1 else image.resize((tile_w, tile_h), Image.Resampling.BILINEAR)
            canvas.paste(tile, (left, top))
        pad = max(3, size // 3)
        box = [left + pad, top + pad, left + pad + size + 2 * pad, top + pad + size + 2 * pad]
        draw.ellipse(box, fill=BADGE)
        draw.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), str(index + 1), fill=INK, font=font, anchor="mm")
    return encode_png(canvas)
