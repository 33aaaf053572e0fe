"""Zoom out and Pan on the picture's side (zbot.core.reframe): the canvas, the mask on the 16-pixel grid,
the seam, and the re-paste that keeps the kept part exactly the picture it was."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zbot.core import reframe
from zbot.core.jobs import panned_size


def picture(width: int = 256, height: int = 256, seed: int = 1) -> Image.Image:
    cells = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)


def noise(size: tuple[int, int], seed: int = 2) -> Image.Image:
    """A stand-in for the painter's output: nothing like the picture anywhere (not even where it kept it)."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_zoom_out_2x_centres_the_half_size_picture_on_the_grid_and_masks_the_rest():
    frame = reframe.zoom_out(picture(), 2.0)
    assert frame.size == (256, 256) and frame.box == (64, 64, 192, 192)
    assert all(edge % 16 == 0 for edge in frame.box + frame.inner)
    assert frame.inner == (80, 80, 176, 176)  # the seam: 16 pixels on every side that meets the border
    mask = np.asarray(frame.mask)
    assert (mask[80:176, 80:176] == 0).all() and mask.sum() == 255 * (256 * 256 - 96 * 96)
    assert reframe.difference(frame.canvas, frame) == reframe.Closeness(0, 0.0)  # the canvas holds the picture


def test_zoom_out_1_5x_and_odd_sizes_stay_on_the_grid():
    frame = reframe.zoom_out(picture(1024, 768), 1.5)
    left, top, right, bottom = frame.box
    assert frame.size == (1024, 768) and all(edge % 16 == 0 for edge in frame.box)
    assert abs((right - left) / 1024 - 1 / 1.5) < 0.03 and abs((bottom - top) / 768 - 1 / 1.5) < 0.03
    assert reframe.zoom_out(picture(250, 130), 2.0).size == (240, 128)  # an upload's odd size, onto the grid
    with pytest.raises(ValueError):
        reframe.zoom_out(picture(), 3.0)


@pytest.mark.parametrize("direction, size, box", [
    ("right", (384, 256), (0, 0, 256, 256)),
    ("left", (384, 256), (128, 0, 384, 256)),
    ("down", (256, 384), (0, 0, 256, 256)),
    ("up", (256, 384), (0, 128, 256, 384)),
])
def test_pan_grows_the_canvas_by_half_toward_the_new_strip(direction, size, box):
    frame = reframe.pan(picture(), direction)
    assert frame.size == size and frame.box == box
    # The seam is only on the side that meets the new strip; the others are the canvas's edges.
    open_side = {"right": (0, 0, 240, 256), "left": (144, 0, 384, 256), "down": (0, 0, 256, 240),
                 "up": (0, 144, 256, 384)}[direction]
    assert frame.inner == open_side


def test_pan_stops_at_the_2048_cap_and_stays_on_the_grid():
    assert panned_size(1024, 1024, "right") == (1536, 1024)
    assert panned_size(1536, 1024, "left") == (2048, 1024)  # 2304 capped
    assert panned_size(2048, 1024, "right") is None and panned_size(2048, 1024, "up") == (2048, 1536)
    assert panned_size(1360, 768, "down") == (1360, 1152)
    assert panned_size(1008, 1008, "right") == (1504, 1008)  # 1512 down to the grid
    assert reframe.pan(picture(2048, 256), "left") is None


@pytest.mark.parametrize("make", [lambda p: reframe.zoom_out(p, 2.0), lambda p: reframe.pan(p, "right")])
def test_finish_keeps_the_kept_part_exactly_and_fades_it_in_across_the_seam(make):
    """The painter's output (noise here: it changed even what it was to keep) gets the kept pixels back:
    identical inside, a blend across the seam that starts from the painted pixels at the edge."""
    frame = make(picture())
    painted = noise(frame.size)
    done = reframe.finish(painted, frame)
    assert reframe.difference(done, frame, frame.inner) == reframe.Closeness(0, 0.0)
    assert reframe.difference(painted, frame, frame.inner).max > 200  # it was far before the re-paste
    new = np.ones(frame.size[::-1], bool)
    new[frame.box[1]:frame.box[3], frame.box[0]:frame.box[2]] = False
    assert (np.asarray(done)[new] == np.asarray(painted)[new]).all()  # the new part is the painter's
    seam = reframe.difference(done, frame).mean
    assert 0 < seam < reframe.difference(painted, frame).mean / 4  # across the seam, mostly the picture
