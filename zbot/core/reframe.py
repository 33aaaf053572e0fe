"""Zoom out and Pan (issue 28): the canvas, the mask and the seam that the inpainting pipeline needs, and
the re-paste that keeps the kept part the picture it was. Pillow only; the engine does the painting.

The inpainting pipeline keeps the unmasked part in latent space only: it re-encodes it with the VAE, and
what comes back out of the decoder is close to it, not it (`difference` measures how close). So `finish`
pastes the kept pixels back over the painted image: they come out exactly as they were, except in a seam
of `Frame.seam` pixels along the sides that meet the new part. The model repaints that seam too (the mask
covers it), and the kept pixels fade in across it, so no frame shows where the new part begins.

Every edge falls on the 16-pixel grid (the pipeline's latent patches), so the mask is exact in latent space.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageChops, ImageFilter, ImageStat

from zbot.core.jobs import UPSCALE_MAX_SIDE, panned_size

ZOOM_FACTORS = (2.0, 1.5)
GRID = 16  # the pipeline's sizes are multiples of 16; edges on this grid are exact in latent space


@dataclass(frozen=True)
class Frame:
    """What one Zoom out or Pan hands the painter, and what `finish` needs afterwards."""

    canvas: Image.Image  # RGB, the new size: the kept part in place, a blurred guess of the rest
    mask: Image.Image  # L, canvas size: 255 where the model paints (the new part and the seam), 0 where it keeps
    box: tuple[int, int, int, int]  # the kept part in the canvas: left, top, right, bottom
    kept: Image.Image  # the kept part's pixels (box size)
    alpha: Image.Image  # L, box size: 255 where `finish` pastes the kept pixels as they are, fading to 0 at the seam
    seam: int  # pixels of the seam along each side that meets the new part

    @property
    def size(self) -> tuple[int, int]:
        return self.canvas.size

    @property
    def inner(self) -> tuple[int, int, int, int]:
        """The kept part less its seam: exactly the picture it was after `finish`."""
        left, top, right, bottom = self.box
        sides = open_sides(self.box, self.size)
        return (left + self.seam * ("left" in sides), top + self.seam * ("top" in sides),
                right - self.seam * ("right" in sides), bottom - self.seam * ("bottom" in sides))


@dataclass(frozen=True)
class Closeness:
    """How far one picture is from another over a region, in 8-bit levels (0-255) per channel."""

    max: int
    mean: float


def open_sides(box: tuple[int, int, int, int], size: tuple[int, int]) -> set[str]:
    """The sides of the kept part that meet the new part (the others are the canvas's edges)."""
    left, top, right, bottom = box
    return {side for side, meets in (("left", left > 0), ("top", top > 0), ("right", right < size[0]),
                                     ("bottom", bottom < size[1])) if meets}


def seam_for(width: int, height: int) -> int:
    """16 pixels up to 1024 a side, 32 above: about 1.5% of the picture."""
    return GRID * (2 if min(width, height) > 1024 else 1)


def on_grid(image: Image.Image) -> Image.Image:
    """The image as RGB with both sides multiples of 16 (shrunk to the nearest below, at least 16)."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    size = (max(GRID, image.width // GRID * GRID), max(GRID, image.height // GRID * GRID))
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def zoom_out(image: Image.Image, factor: float) -> Frame:
    """The picture shrunk by `factor` (2 or 1.5) into the centre of a canvas of its own size."""
    if factor not in ZOOM_FACTORS:
        raise ValueError(f"factor must be one of {ZOOM_FACTORS}, not {factor!r}")
    image = on_grid(image)
    width, height = image.size
    # The border on each side a multiple of 16, so the centre's edges stay on the grid.
    inner_w = max(GRID, width - round((width - width / factor) / (2 * GRID)) * 2 * GRID)
    inner_h = max(GRID, height - round((height - height / factor) / (2 * GRID)) * 2 * GRID)
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    small = image.resize((inner_w, inner_h), Image.Resampling.LANCZOS)
    return _frame(image, small, (width, height), (left, top))


def pan(image: Image.Image, direction: str, max_side: int = UPSCALE_MAX_SIDE) -> Frame | None:
    """The canvas grown by half in `direction` (zbot.core.jobs.panned_size), the picture kept at its
    size on the other side; None when that side is at the cap already."""
    image = on_grid(image)
    size = panned_size(*image.size, direction, max_side)
    if size is None:
        return None
    left = size[0] - image.width if direction == "left" else 0
    top = size[1] - image.height if direction == "up" else 0
    return _frame(image, image, size, (left, top))


def _frame(source: Image.Image, kept: Image.Image, size: tuple[int, int], at: tuple[int, int]) -> Frame:
    width, height = size
    # What the new part starts from, were it painted at a strength below 1: the picture's own colours,
    # stretched and blurred (at strength 1, the default, the model starts it from noise anyway).
    canvas = source.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(width, height) / 32))
    canvas.paste(kept, at)
    box = (at[0], at[1], at[0] + kept.width, at[1] + kept.height)
    seam = min(seam_for(width, height), kept.width // 2 // GRID * GRID or GRID, kept.height // 2 // GRID * GRID or GRID)
    alpha = Image.new("L", kept.size, 255)
    for side in open_sides(box, size):
        # Each ramp on its own layer, the darker kept: where two sides meet, a corner fades both ways.
        ramp = Image.new("L", kept.size, 255)
        ramp.paste(_ramp(side, seam, kept.size), _ramp_at(side, seam, kept.size))
        alpha = ImageChops.darker(alpha, ramp)
    frame = Frame(canvas, Image.new("L", size, 255), box, kept, alpha, seam)
    frame.mask.paste(0, frame.inner)
    return frame


def _ramp(side: str, seam: int, size: tuple[int, int]) -> Image.Image:
    """A strip `seam` deep along `side`: 0 at the edge that meets the new part, rising to 255 inward."""
    levels = bytes(round((index + 0.5) * 255 / seam) for index in range(seam))  # from the edge inward
    if side in ("right", "bottom"):
        levels = levels[::-1]
    if side in ("left", "right"):
        return Image.frombytes("L", (seam, 1), levels).resize((seam, size[1]), Image.Resampling.NEAREST)
    return Image.frombytes("L", (1, seam), levels).resize((size[0], seam), Image.Resampling.NEAREST)


def _ramp_at(side: str, seam: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    return {"left": (0, 0, seam, height), "right": (width - seam, 0, width, height),
            "top": (0, 0, width, seam), "bottom": (0, height - seam, width, height)}[side]


def finish(painted: Image.Image, frame: Frame) -> Image.Image:
    """The painted canvas with the kept pixels pasted back: exact inside `frame.inner`, faded in across
    the seam."""
    if painted.size != frame.size:
        raise ValueError(f"painted is {painted.size}, the frame {frame.size}")
    done = painted.convert("RGB")
    under = done.crop(frame.box)
    done.paste(Image.composite(frame.kept, under, frame.alpha), frame.box[:2])
    return done


def difference(image: Image.Image, frame: Frame, box: tuple[int, int, int, int] | None = None) -> Closeness:
    """How far `image` (the canvas's size) is from the kept pixels, over `box` (default: the whole kept
    part; `frame.inner` for the part `finish` keeps exactly)."""
    box = box or frame.box
    dx, dy = frame.box[0], frame.box[1]
    mine = image.convert("RGB").crop(box)
    theirs = frame.kept.crop((box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy))
    diff = ImageChops.difference(mine, theirs)
    return Closeness(max(high for _, high in diff.getextrema()), round(sum(ImageStat.Stat(diff).mean) / 3, 3))
