"""The engine's inpainting path (issue 28: Vary subtle/strong, Zoom out, Pan) on a tiny model whose VAE keeps
the picture (zbot.engine.tiny.keep_pictures), so that "kept" and "close to the source" can be measured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zbot.core import reframe
from zbot.core.imaging import encode_png
from zbot.core.jobs import RenderSpec, Source
from zbot.engine.engine import Engine
from zbot.engine.inpaint import inpaint_sizes

SIZE, STEPS = 128, 8


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    from zbot.engine.tiny import build_tiny_model

    torch.set_num_threads(2)  # same bytes for the same seed needs a fixed thread count
    engine = Engine(str(build_tiny_model(tmp_path_factory.mktemp("keeps") / "model", keeps_pictures=True)),
                    device="cpu")
    engine.load()
    return engine


def picture(width: int = SIZE, height: int = SIZE, seed: int = 1) -> Image.Image:
    cells = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)


def far(image: Image.Image, source: Image.Image) -> float:
    """Mean difference in 8-bit levels of the two pictures' broad shapes (4x4 cells): the noise a model
    leaves behind at the scale of a latent pixel averages out, the picture doesn't."""
    def cells(im):
        return np.asarray(im.convert("RGB").resize((4, 4), Image.Resampling.BOX), float)
    return float(np.abs(cells(image) - cells(source)).mean())


def likeness(image: Image.Image, source: Image.Image) -> float:
    """Correlation of the two pictures' 8x8 cells (-1 to 1): what a model at a strength keeps of a picture,
    seen through the noise this random-weight model leaves behind (no scale, so the clipping doesn't count)."""
    def cells(im):
        return np.asarray(im.convert("RGB").resize((8, 8), Image.Resampling.BOX), float).ravel()
    return float(np.corrcoef(cells(image), cells(source))[0, 1])


def draw(engine: Engine, seed: int, source: Image.Image | None = None, strength: float | None = None):
    spec = RenderSpec(1, "a red fox in the snow", seed, SIZE, SIZE, STEPS,
                      source=Source(png=encode_png(source)) if source is not None else None, strength=strength)
    return engine.render(spec, lambda done, total: None)


def test_the_tiny_vae_keeps_the_picture(engine: Engine):
    pipe = engine.pipe
    source = picture()
    pixels = pipe.image_processor.preprocess(source)
    with torch.no_grad():
        back = pipe.vae.decode(pipe.vae.encode(pixels).latent_dist.mode()).sample
    assert (back - pixels).abs().mean() < 0.06  # 8x8 block means: ~7 levels of 255 on this smooth picture


def test_image_to_image_stays_closer_than_a_draw_and_subtle_closer_than_strong(engine: Engine):
    source = picture()
    unrelated = likeness(draw(engine, 7), source)
    subtle, strong = likeness(draw(engine, 7, source, 0.3), source), likeness(draw(engine, 7, source, 0.6), source)
    assert subtle > unrelated + 0.25 and subtle > 0.35
    assert subtle > strong + 0.15


def test_zoom_out_2x_keeps_the_centre_and_paints_a_new_border(engine: Engine):
    source = picture()
    frame = reframe.zoom_out(source, 2.0)
    steps = []
    painted = engine.render_inpaint("a red fox in the snow", 9, SIZE, SIZE, STEPS, frame.canvas, frame.mask,
                                    on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(i, STEPS) for i in range(1, STEPS + 1)]
    # The pipeline kept the centre only as latents: close (the VAE's round trip), not equal...
    assert reframe.difference(painted, frame, frame.inner).mean < 20
    done = reframe.finish(painted, frame)
    # ...and after the re-paste, exactly; the centre scaled back up is the source, less the shrink's detail.
    assert reframe.difference(done, frame, frame.inner) == reframe.Closeness(0, 0.0)
    left, top, right, bottom = (2 * (edge - frame.box[0]) for edge in frame.inner)  # the same part of the source
    centre = done.crop(frame.inner).resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    assert far(centre, source.crop((left, top, right, bottom))) < 3
    border = np.ones((SIZE, SIZE), bool)
    border[frame.box[1]:frame.box[3], frame.box[0]:frame.box[2]] = False
    new, guessed = np.asarray(done, float)[border], np.asarray(frame.canvas, float)[border]
    assert np.abs(new - guessed).mean() > 30  # painted, not the blurred guess it started from
    again = engine.render_inpaint("a red fox in the snow", 10, SIZE, SIZE, STEPS, frame.canvas, frame.mask)
    assert np.abs(np.asarray(again, float)[border] - np.asarray(painted, float)[border]).mean() > 10  # a new seed


def test_pan_right_widens_by_half_and_keeps_the_left_part(engine: Engine):
    source = picture()
    frame = reframe.pan(source, "right")
    painted = engine.render_inpaint("a red fox in the snow", 9, *frame.size, STEPS, frame.canvas, frame.mask)
    assert reframe.difference(painted, frame, frame.inner).mean < 20  # kept by the pipeline (as latents)...
    done = reframe.finish(painted, frame)
    assert done.size == (SIZE * 3 // 2, SIZE)  # ...and exactly after the re-paste
    assert reframe.difference(done, frame, frame.inner) == reframe.Closeness(0, 0.0)
    assert frame.inner == (0, 0, SIZE - 16, SIZE)  # all but the seam next to the new strip
    strip = np.asarray(done, float)[:, SIZE:]
    assert strip.std() > 30 and np.abs(strip - np.asarray(frame.canvas, float)[:, SIZE:]).mean() > 30


def test_the_inpainting_pipeline_shares_every_module_and_draws_what_diffusers_draws(engine: Engine):
    from diffusers import ZImageInpaintPipeline

    mine = engine._inpaint_pipeline()
    for name, module in engine.pipe.components.items():
        assert (getattr(mine, name) is module) == (name != "scheduler"), name
    frame = reframe.zoom_out(picture(64, 64), 2.0)
    ours = engine.render_inpaint("a fox", 3, 64, 64, STEPS, frame.canvas, frame.mask)
    plain = ZImageInpaintPipeline(**engine.pipe.components)  # its second VAE encode included
    theirs = plain(prompt_embeds=[engine.prompts.encode("a fox")], image=frame.canvas, mask_image=frame.mask,
                   strength=1.0, height=64, width=64, num_inference_steps=STEPS, guidance_scale=0.0,
                   generator=torch.Generator().manual_seed(3)).images[0]
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_pan_sizes_are_warmed_up_like_the_upscale_sizes(engine: Engine):
    assert inpaint_sizes([(1024, 1024), (1360, 768)]) == [(1536, 1024), (1024, 1536), (2032, 768), (1360, 1152)]
    engine.sizes, engine.upscale_sizes, before = [(64, 64)], [(128, 128)], set(engine.warmed_sizes)
    try:
        plan = engine._warmup_plan()  # what the engine warms up while idle, after its first image
        painting = [(what, step) for what, step in plan if what.startswith(("inpaint", "pan"))]
        assert [what for what, _ in painting] == ["inpaint at 64x64", "pan to 96x64", "pan to 64x96"]
        for _, step in painting:
            step()
        assert {(64, 64), (96, 64), (64, 96)} <= engine.warmed_sizes
    finally:
        engine.warmed_sizes = before


def test_the_warm_up_plan_covers_every_configured_size_then_upscales_then_painting(engine: Engine):
    """The order of the idle warm-up with more than one size (the compiled start test configures one, to
    stay fast): the other sizes, their upscales, then inpainting and each Pan size not already warm."""
    engine.sizes, engine.upscale_sizes = [(64, 64), (128, 128)], [(256, 256)]  # as Engine(sizes=...) sets them
    try:
        plan = [what for what, _ in engine._warmup_plan()]
    finally:
        engine.sizes, engine.upscale_sizes = [(64, 64)], [(128, 128)]
    assert plan == ["the text encoder at each length", "64x64 at the longest caption", "128x128",
                    "upscale to 256x256", "inpaint at 64x64", "pan to 96x64", "pan to 64x96", "pan to 192x128",
                    "pan to 128x192"]
