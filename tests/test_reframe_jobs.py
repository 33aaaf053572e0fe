"""Issue 28 through the Service: a draw from one's own picture, Vary subtle and strong, Zoom out and Pan,
recorded so that each is drawn again exactly, after a restart too. The closeness tests run the tiny model
whose VAE keeps the picture (zbot.engine.tiny, keeps_pictures); the rules run on the fake renderer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.config import parse_windows
from zbot.core import reframe
from zbot.core.drawn import drawn_dir
from zbot.core.jobs import BadInput, DrawRequest, Operation

STEPS = 8


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"rate_limits": parse_windows("100/minute"), "steps": STEPS,
                                       "sizes": {"square": "128x128", "wide": "192x128"}})


@pytest.fixture(scope="module")
def keeping_engine(tmp_path_factory: pytest.TempPathFactory):
    from zbot.engine.engine import Engine
    from zbot.engine.tiny import build_tiny_model

    torch.set_num_threads(2)
    engine = Engine(str(build_tiny_model(tmp_path_factory.mktemp("keeps") / "model", keeps_pictures=True)),
                    device="cpu")
    engine.load()
    return engine


def picture(width: int, height: int, seed: int = 1) -> Image.Image:
    cells = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)


def png_of(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def likeness(image: Image.Image, source: Image.Image, cells: int = 8) -> float:
    """Correlation of the two pictures' 8x8 cells: what survives the random model's noise."""
    def cells_of(im):
        return np.asarray(im.convert("RGB").resize((cells, cells), Image.Resampling.BOX), float).ravel()
    return float(np.corrcoef(cells_of(image), cells_of(source))[0, 1])


def opened(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


async def draw(core, **fields):
    request = DrawRequest(**{"user_id": 1, "prompt": "a red fox in the snow", "channel_id": 5, "source": "http",
                             **fields})
    result = await (await core.service.submit(request)).result()
    await core.service.drain()
    await core.service.delivered(result.job_id, message_id=1000 + result.job_id)
    return result


async def test_an_upload_is_drawn_at_the_closest_size_near_the_picture_and_kept_once_by_hash(settings, keeping_engine):
    upload = picture(300, 200)  # 3:2, like "wide"
    async with open_core(settings, [keeping_engine]) as core:
        mine = await draw(core, from_image=png_of(upload, "JPEG"), strength=0.3, seed=7)
        unrelated = await draw(core, seed=7)
        again = await draw(core, from_image=png_of(upload, "JPEG"), strength=0.3, seed=8)
        row, row_again = await core.store.get(mine.job_id), await core.store.get(again.job_id)
    assert (mine.width, mine.height) == (192, 128)
    shaped = upload.resize((192, 128))
    assert likeness(opened(mine.png), shaped) > likeness(opened(unrelated.png), shaped.resize((128, 128))) + 0.25
    assert (row.operation, row.strength, row.size, row.cost) == ("file", 0.3, "wide", 1)
    assert row.upload is not None and row.upload == row_again.upload  # the same picture, recorded as the source
    assert [p.name for p in (drawn_dir(settings.database) / "uploads").iterdir()] == [f"{row.upload}.png"]


async def test_vary_subtle_stays_closer_than_vary_strong(settings, keeping_engine):
    source = picture(128, 128)
    async with open_core(settings, [keeping_engine]) as core:
        first = await draw(core, from_image=png_of(source), strength=0.2, seed=3)
        subtle = await draw(core, parent_id=first.job_id, operation=Operation.VARY, strength=0.3, seed=11)
        strong = await draw(core, parent_id=first.job_id, operation=Operation.VARY, seed=11)
        rows = [await core.store.get(r.job_id) for r in (subtle, strong)]
    parent = opened(first.png)
    assert likeness(opened(subtle.png), parent) > likeness(opened(strong.png), parent) + 0.1
    assert [r.strength for r in rows] == [0.3, settings.vary_strength]


async def test_zoom_out_keeps_the_centre_and_pan_right_keeps_the_left_part_across_a_restart(settings, keeping_engine):
    source = picture(128, 128)
    async with open_core(settings, [keeping_engine]) as core:
        first = await draw(core, from_image=png_of(source), strength=0.2, seed=3)
        zoomed = await draw(core, parent_id=first.job_id, operation=Operation.ZOOM, factor=2.0)
    parent = opened(first.png)
    done = opened(zoomed.png)
    assert done.size == (128, 128)
    frame = reframe.zoom_out(parent, 2.0)
    assert frame.box == (32, 32, 96, 96)
    assert reframe.difference(done, frame, frame.inner) == reframe.Closeness(0, 0.0)  # kept exactly, less the seam
    assert frame.inner == (48, 48, 80, 80)  # the source's (32, 32, 96, 96), shrunk by 2
    centre = done.crop(frame.inner).resize((64, 64), Image.Resampling.LANCZOS)
    assert likeness(centre, parent.crop((32, 32, 96, 96)), cells=4) > 0.8  # scaled back up, it is the picture
    border = np.asarray(done, float)[:16]
    assert border.std() > 10  # painted, not blank
    async with open_core(settings, [keeping_engine]) as core:  # a restart between the clicks
        panned = await draw(core, parent_id=first.job_id, operation=Operation.PAN, direction="right")
        rerolled = await draw(core, parent_id=zoomed.job_id, operation=Operation.REROLL)
        rows = {r.operation: r for r in [await core.store.get(j.job_id) for j in (zoomed, panned, rerolled)]}
    wide = opened(panned.png)
    assert wide.size == (192, 128)
    kept = np.abs(np.asarray(wide, float)[:, :112] - np.asarray(parent, float)[:, :112])
    assert kept.max() == 0  # the left part, less the seam, exactly as it was
    assert (rows["zoom"].factor, rows["pan"].direction, rows["reroll"].factor) == (2.0, "right", 2.0)
    assert rerolled.seed != zoomed.seed and opened(rerolled.png).crop(frame.inner) == done.crop(frame.inner)
    assert rows["pan"].cost == 1 and rows["pan"].source_id == first.job_id  # 192x128 is a configured size's area


async def test_a_pan_at_the_cap_and_a_hostile_upload_are_refused_and_nothing_is_drawn(settings):
    settings = settings.model_copy(update={"sizes": {"square": "128x128", "tall": "128x2048"}})
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        tall = await draw(core, size="tall", seed=1)
        with pytest.raises(BadInput, match="2048 pixels already"):
            await core.service.submit(DrawRequest(user_id=1, prompt="x", parent_id=tall.job_id,
                                                  operation=Operation.PAN, direction="down", source="http"))
        bomb = Image.new("1", (20000, 20000))
        for hostile, says in ((png_of(bomb), "megapixels"), (png_of(picture(64, 64))[:300], "damaged"),
                              (b"%PDF-1.4 not an image", "PNG, JPEG, WebP or GIF")):
            with pytest.raises(BadInput, match=says):
                await core.service.submit(DrawRequest(user_id=1, prompt="x", from_image=hostile, source="http"))
        rows = await core.store.generations("ORDER BY id")
    assert len(renderer.specs) == 1 and len(rows) == 1
    assert not (drawn_dir(settings.database) / "uploads").exists()
