"""Issue 28 over HTTP: POST /v1/images with a picture (base64 or a multipart file part) and a strength, and
POST /v1/images/{id}/zoom and /pan on the key's own images (the fake renderer stands in for the GPU)."""

from __future__ import annotations

import base64
import io

import aiohttp
from PIL import Image
from support.renderers import FakeRenderer
from test_http import KEY, OTHER_KEY, serving, with_keys

from zbot.app import open_core


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def settings_for(settings):
    return with_keys(settings, KEY, OTHER_KEY, rate_limits="100/minute", sizes={"square": "64x64", "wide": "96x64"})


async def test_a_picture_in_json_or_multipart_then_zoom_and_pan_of_it(settings):
    renderer = FakeRenderer()
    async with open_core(settings_for(settings), [renderer]) as core, serving(core) as client:
        as_json = await client.draw({"prompt": "a fox", "image": base64.b64encode(png_of(150, 100)).decode(),
                                     "strength": 0.4})
        form = aiohttp.FormData()
        form.add_field("prompt", "a fox")
        form.add_field("strength", "0.5")
        form.add_field("image", png_of(150, 100), filename="fox.png", content_type="image/png")
        as_form = await client.session.post(f"{client.base}/v1/images", data=form,
                                            headers={"Authorization": f"Bearer {KEY}"})
        await as_form.read()
        job = as_json.headers["X-Zbot-Job-Id"]
        zoomed = await client.post(f"/v1/images/{job}/zoom", {"factor": 2})
        panned = await client.post(f"/v1/images/{job}/pan", {"direction": "right"})
        not_mine = await client.post(f"/v1/images/{job}/pan", {"direction": "right"}, key=OTHER_KEY)
        at_cap = await client.post(f"/v1/images/{job}/zoom", {"factor": 3})
        rows = await core.store.generations("ORDER BY id")
    assert (as_json.status, as_form.status) == (200, 200)
    assert Image.open(io.BytesIO(await as_json.read())).size == (96, 64)  # the named size closest to 3:2
    source = Image.open(io.BytesIO(renderer.specs[0].source.png))
    assert source.tobytes() == Image.open(io.BytesIO(png_of(150, 100))).tobytes() and renderer.specs[0].strength == 0.4
    assert rows[0].upload == rows[1].upload is not None and rows[1].strength == 0.5
    assert zoomed.status == 200 and zoomed.headers["X-Zbot-Operation"] == "zoom"
    assert Image.open(io.BytesIO(await panned.read())).size == (144, 64)
    assert (renderer.specs[2].factor, renderer.specs[3].direction) == (2.0, "right")
    assert not_mine.status == 404
    assert at_cap.status == 422 and "Zoom out by one of: 2, 1.5" in (await at_cap.json())["error"]


async def test_a_hostile_picture_is_one_422_sentence_and_nothing_is_drawn(settings):
    renderer = FakeRenderer()
    async with open_core(settings_for(settings), [renderer]) as core, serving(core) as client:
        not_base64 = await client.draw({"prompt": "a fox", "image": "%%%"})
        not_an_image = await client.draw({"prompt": "a fox", "image": base64.b64encode(b"MZ\x90\0" * 50).decode()})
        answers = [await r.json() for r in (not_base64, not_an_image)]
        rows = await core.store.generations("ORDER BY id")
    assert [r.status for r in (not_base64, not_an_image)] == [422, 422]
    assert answers[0]["error"] == "image: give the picture's file as base64."
    assert answers[1]["error"] == "That file isn't an image I can read; send a PNG, JPEG, WebP or GIF."
    assert rows == [] and renderer.specs == []
