"""Issue 28 end to end through the fake Discord, on the tiny model whose VAE keeps the picture: /draw with an
attachment, hostile attachments refused in one line with nothing drawn, Vary (Subtle) and (Strong), Zoom Out
2x and Pan right, with a restart between the clicks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from support.botkit import bot_settings, control, finished, image_of, running_bot

from zbot.core import reframe

SIZES = {"square": "128x128", "wide": "192x128"}  # a Zoom out keeps a centre beyond its seams


@pytest.fixture(scope="module")
def keeping_model(tmp_path_factory: pytest.TempPathFactory):
    from zbot.engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("keeps") / "model", keeps_pictures=True)


def picture(width: int, height: int) -> Image.Image:
    cells = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def likeness(image: Image.Image, source: Image.Image) -> float:
    def cells(im):
        return np.asarray(im.convert("RGB").resize((8, 8), Image.Resampling.BOX), float).ravel()
    return float(np.corrcoef(cells(image), cells(source))[0, 1])


async def test_draw_from_an_attachment_then_vary_zoom_and_pan_across_a_restart(fake, tmp_path, keeping_model):
    settings = bot_settings(tmp_path, keeping_model, sizes=SIZES, steps=8, vary_strength=0.8,
                            vary_subtle_strength=0.3)
    upload = picture(300, 200)
    async with running_bot(fake, settings):
        mine = await (await fake.slash("draw", {"prompt": "a fox", "seed": 5, "strength": 0.2,
                                                "image": ("fox.jpg", encoded(upload, "JPEG"))})
                      ).wait_original(finished, timeout=60)
        unrelated = await (await fake.slash("draw", {"prompt": "a fox", "seed": 5, "size": "wide"})
                           ).wait_original(finished, timeout=60)
    shaped = upload.resize((192, 128))
    assert image_of(mine).size == (192, 128)  # the configured size closest to 3:2
    assert likeness(image_of(mine), shaped) > likeness(image_of(unrelated), shaped) + 0.15
    async with running_bot(fake, settings) as run:  # the buttons of the posts before the restart
        subtle = await (await fake.click(mine, control(mine, "vary-subtle"))).wait_original(finished, timeout=60)
        strong = await (await fake.click(mine, control(mine, "vary"))).wait_original(finished, timeout=60)
        zoomed = await (await fake.click(mine, control(mine, "zoom-2"))).wait_original(finished, timeout=60)
        panned = await (await fake.click(mine, control(mine, "pan-right"))).wait_original(finished, timeout=60)
        await run.settle()
        rows = await run.core.store.query("SELECT operation, strength, factor, direction, width, height, upload "
                                          "FROM generations ORDER BY id")
    parent = image_of(mine).convert("RGB")
    assert likeness(image_of(subtle), parent) > likeness(image_of(strong), parent)
    frame = reframe.zoom_out(parent, 2.0)
    assert image_of(zoomed).size == (192, 128)
    assert reframe.difference(image_of(zoomed), frame, frame.inner) == reframe.Closeness(0, 0.0)  # the centre kept
    assert image_of(panned).size == (288, 128)  # half again to the right
    left = np.asarray(image_of(panned).convert("RGB"), float)[:, :176]
    assert np.array_equal(left, np.asarray(parent, float)[:, :176])  # the left part kept, less the seam
    assert [tuple(r)[:6] for r in rows] == [
        ("file", 0.2, None, None, 192, 128), ("draw", None, None, None, 192, 128), ("vary", 0.3, None, None, 192, 128),
        ("vary", 0.8, None, None, 192, 128), ("zoom", 1.0, 2.0, None, 192, 128), ("pan", 1.0, None, "right", 288, 128)]
    assert rows[0]["upload"] is not None


@pytest.mark.parametrize("name, data, says", [
    ("bomb.png", encoded(Image.new("1", (20000, 20000))), "megapixels"),
    ("cut.png", encoded(picture(64, 64))[:300], "damaged"),
    ("notes.png", b"%PDF-1.4 not an image at all", "PNG, JPEG, WebP or GIF"),
])
async def test_a_hostile_attachment_gets_one_private_line_and_nothing_is_drawn(fake, tmp_path, keeping_model,
                                                                             name, data, says):
    async with running_bot(fake, bot_settings(tmp_path, keeping_model, sizes=SIZES)) as run:
        interaction = await fake.slash("draw", {"prompt": "a fox", "image": (name, data)})
        answer = await interaction.wait_response()
        await run.settle()
        rows = await run.core.store.query("SELECT id FROM generations")
    assert answer.type == 4 and answer.data["flags"] & 64  # a reply only its user sees
    assert says in answer.data["content"] and answer.data["content"].count(". ") == 0  # one sentence
    assert rows == [] and not [m for m in fake.bot_messages if m.attachments]


def test_a_pan_is_greyed_out_where_its_side_is_at_the_cap():
    from zbot.bot.views import PANS, Buttons, image_view

    async def nothing(interaction, generation_id):
        return None

    buttons = Buttons({kind: nothing for kind in PANS}, image_kinds=(tuple(PANS),))
    view = image_view(buttons, 7, 2048, 1024)
    greyed = {item.item.custom_id for item in view.children if item.item.disabled}
    assert greyed == {"zbot:pan-left:7", "zbot:pan-right:7"}  # up and down still grow 1024 to 1536


async def test_the_message_menu_draws_from_a_members_picture_with_the_prompt_of_its_form(fake, tmp_path, keeping_model):
    async with running_bot(fake, bot_settings(tmp_path, keeping_model, sizes=SIZES, steps=4)) as run:
        posted = fake.add_message("look at this", attachments=[("fox.png", encoded(picture(300, 200)), "image/png")])
        bare = fake.add_message("no picture here")
        refused = await (await fake.context_menu("Draw from this image", bare.id)).wait_response()
        opened = await fake.context_menu("Draw from this image", posted.id)
        await opened.wait_response()
        drawn = await (await fake.submit_modal(opened, {"zbot:prompt": "a fox in the snow"})
                       ).wait_original(finished, timeout=60)
        await run.settle()
        rows = await run.core.store.query("SELECT operation, prompt, upload FROM generations")
    assert refused.data["flags"] & 64 and "That message has no image" in refused.data["content"]
    assert image_of(drawn).size == (192, 128)
    assert [tuple(r)[:2] for r in rows] == [("file", "a fox in the snow")] and rows[0]["upload"]


async def test_a_slow_upload_is_acknowledged_in_time_and_its_refusal_stays_private(fake, tmp_path, keeping_model,
                                                                                monkeypatch):
    """An attachment that takes longer to download than Discord allows for the answer (3 s here, as there):
    the interaction is acknowledged within its budget while the picture comes, the image is posted, and a
    picture refused after that acknowledgement is told privately, the public "thinking…" removed."""
    from zbot.bot import uploads

    real = uploads.download

    async def slow(attachment, **kwargs):
        import asyncio

        await asyncio.sleep(3.2)  # past Discord's 3 s for a first answer
        return await real(attachment, **kwargs)

    monkeypatch.setattr(uploads, "download", slow)
    async with running_bot(fake, bot_settings(tmp_path, keeping_model, sizes=SIZES, steps=4)) as run:
        drawn = await fake.slash("draw", {"prompt": "a fox", "image": ("fox.png", encoded(picture(300, 200)))})
        refused = await fake.slash("draw", {"prompt": "a fox", "image": ("notes.png", b"%PDF-1.4 no image")})
        image = await drawn.wait_original(finished, timeout=60)
        [told] = await refused.wait_followups(1, timeout=30)
        await run.settle()
    assert drawn.response_type == refused.response_type == 5  # acknowledged in time, before the picture came
    assert image_of(image).size == (192, 128) and not image.ephemeral
    assert told.ephemeral and "PNG, JPEG, WebP or GIF" in told.content
    assert refused.original.deleted  # nothing of the refusal shown to the channel
