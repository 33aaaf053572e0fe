"""The rules of refining an image, in the core and over HTTP (a fake renderer stands in for the GPU):
what each operation draws, what it costs, what is refused, where its source image comes from."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from support.renderers import FakeRenderer
from test_http import KEY, OTHER_KEY, serving, with_keys

from zbot.app import open_core
from zbot.config import parse_windows
from zbot.core.jobs import BadInput, DrawRequest, Operation, RateLimited, Source, upscaled_size
from zbot.core.usage import usage_report


@pytest.fixture
def settings(settings):
    """Room for every request a test makes (the default is 5 a minute)."""
    return settings.model_copy(update={"rate_limits": parse_windows("100/minute")})


async def draw(core, **fields):
    request = DrawRequest(**{"user_id": 1, "prompt": "a fox", "channel_id": 5, **fields})
    ticket = await core.service.submit(request)
    result = await ticket.result()
    await core.service.drain()
    await core.service.delivered(result.job_id, message_id=1000 + result.job_id)
    return result


async def test_a_variation_starts_from_the_kept_image_with_a_new_seed(settings):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        parent = await draw(core, seed=10)
        varied = await draw(core, parent_id=parent.job_id, operation=Operation.VARY, user_id=2)
        row = await core.store.get(varied.job_id)
    spec = renderer.specs[-1]
    assert spec.source == Source(png=parent.png) and spec.strength == settings.vary_strength
    assert (spec.width, spec.height, spec.prompt) == (64, 64, "a fox") and spec.seed != 10
    assert (row.operation, row.parent_id, row.source_id, row.source_index, row.cost) == ("vary", 1, 1, 0, 1)
    assert row.user_id == 2  # the clicker's, not the parent's owner's


async def test_an_upscale_is_twice_the_size_and_counts_its_weight_against_the_limits(settings):
    settings = settings.model_copy(update={"rate_limits": parse_windows("5/day"), "upscale_weight": 4})
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        parent = await draw(core, seed=3)
        upscaled = await draw(core, parent_id=parent.job_id, operation=Operation.UPSCALE)
        row = await core.store.get(upscaled.job_id)
        quota = await core.service.quota(1)
        with pytest.raises(RateLimited, match="reached your limit"):
            await core.service.submit(DrawRequest(user_id=1, prompt="x", parent_id=1, operation=Operation.VARY))
    assert (upscaled.width, upscaled.height, upscaled.seed) == (128, 128, 3)  # 64x64, twice per side, same seed
    assert renderer.specs[-1].strength == settings.upscale_strength
    assert row.cost == 4 and quota.windows[0].used == 5


def test_an_upscale_doubles_each_side_up_to_2048_on_the_grid():
    """The cap the bot tests lower to 128 (to draw small): the real one, as the core and the views use it."""
    assert upscaled_size(64, 96) == (128, 192)
    assert upscaled_size(1024, 1024) == (2048, 2048)
    assert upscaled_size(1536, 1024) == (2048, 1360)  # 1365 onto the grid of 16
    assert upscaled_size(2048, 2048) == (2048, 2048) and upscaled_size(2048, 1024) == (2048, 1024)  # no bigger


async def test_what_cant_be_refined_is_refused_in_a_sentence(settings):
    settings = settings.model_copy(update={"sizes": {"square": "64x64", "huge": "2048x2048"}})
    async with open_core(settings, [FakeRenderer()]) as core:
        small = await draw(core, seed=1)
        huge = await draw(core, seed=2, size="huge")
        refusals = []
        for request in [DrawRequest(user_id=1, prompt="x", parent_id=huge.job_id, operation=Operation.UPSCALE),
                        DrawRequest(user_id=1, prompt="x", parent_id=small.job_id, operation=Operation.RESIZE,
                                    size="square"),
                        DrawRequest(user_id=1, prompt="x", parent_id=small.job_id, operation=Operation.RESIZE,
                                    size="giant"),
                        DrawRequest(user_id=1, prompt="x", parent_id=999, operation=Operation.VARY),
                        DrawRequest(user_id=1, prompt="x", parent_id=small.job_id, operation=Operation.VARY, image=2)]:
            with pytest.raises(BadInput) as refused:
                await core.service.submit(request)
            refusals.append(refused.value.message)
        await core.lifecycle.deleted(small.job_id)
        with pytest.raises(BadInput, match="deleted"):
            await core.service.submit(DrawRequest(user_id=1, prompt="x", parent_id=small.job_id,
                                                  operation=Operation.VARY))
        rejected = await core.store.query("SELECT user_id, reason, sum(count) FROM refusals GROUP BY 1, 2")
    assert refusals == [
        "That image is as large as I draw (2048 pixels on its longer side); it can't be upscaled again.",
        "That image is that size already; choose another.",
        "Choose one of the sizes: square, huge.",
        "That image is no longer in my records (or was deleted), so I can't work from it; use /draw.",
        "That grid has 1 images; choose one of 1 to 1.",
    ]
    assert [tuple(r) for r in rejected] == [(1, "bad_input", 6)]  # refusals are counted


async def test_reroll_and_edit_of_a_variation_keep_its_source_and_strength(settings):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        parent = await draw(core, seed=10)
        varied = await draw(core, parent_id=parent.job_id, operation=Operation.VARY)
        rerolled = await draw(core, parent_id=varied.job_id)  # a reroll: no operation given
        edited = await draw(core, parent_id=varied.job_id, operation=Operation.EDIT, prompt="a grey fox")
        rows = {job: await core.store.get(job) for job in (rerolled.job_id, edited.job_id)}
    reroll_spec, edit_spec = renderer.specs[-2:]
    assert reroll_spec.source == edit_spec.source == Source(png=parent.png)
    assert reroll_spec.seed not in (varied.seed, 10) and edit_spec.seed == varied.seed
    assert edit_spec.prompt == "a grey fox" and edit_spec.strength == settings.vary_strength
    assert rows[rerolled.job_id].operation == "reroll" and rows[rerolled.job_id].source_id == parent.job_id
    assert rows[edited.job_id].operation == "edit" and rows[edited.job_id].parent_id == varied.job_id


async def test_a_variation_of_a_picked_image_starts_from_its_grid_image(settings):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        grid = await draw(core, seed=20, count=3)
        pick = await core.store.record(user_id=1, prompt="a fox", seed=22, size="square", width=64, height=64,
                                       steps=8, status="posted", parent_id=grid.job_id, count=0, cost=0,
                                       operation="pick", message_id=77, guild_id=9, channel_id=5)
        varied = await draw(core, parent_id=pick, operation=Operation.VARY)
        row = await core.store.get(varied.job_id)
    assert renderer.specs[-1].source == Source(png=grid.pictures[2].png)
    assert (row.parent_id, row.source_id, row.source_index) == (pick, grid.job_id, 2)


async def test_a_source_no_longer_kept_is_drawn_again_and_a_resumed_job_reads_it_again(settings):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        parent = await draw(core, seed=10)
        varied = await draw(core, parent_id=parent.job_id, operation=Operation.VARY)
        job = await core.store.get(varied.job_id)
        assert (await core.service.render_spec(job)).source == Source(png=parent.png)
        core.lifecycle.images.remove(parent.job_id)
        spec = await core.service.render_spec(job)
        assert spec.source.png is None and spec.source.redraw.seed == 10 and spec.source.redraw.prompt == "a fox"
        # A variation of that variation, neither kept: the chain is drawn again from the first seed.
        core.lifecycle.images.remove(varied.job_id)
        second = await draw(core, parent_id=varied.job_id, operation=Operation.VARY)
        chain = renderer.specs[-1].source.redraw
        assert chain.seed == varied.seed and chain.source.redraw.seed == 10
        assert second.width == 64
        await core.store.write("UPDATE generations SET seed = NULL WHERE id = ?", (parent.job_id,))  # unknowable
        with pytest.raises(BadInput, match="no longer kept"):
            await core.service.render_spec(job)


async def test_stats_count_images_by_operation(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        parent = await draw(core)
        await draw(core, parent_id=parent.job_id, operation=Operation.VARY)
        await draw(core, parent_id=parent.job_id, operation=Operation.VARY)
        await draw(core, parent_id=parent.job_id, operation=Operation.UPSCALE)
        report = await usage_report(core.store, now=time.time())
    assert report.operations == {"vary": 2, "draw": 1, "upscale": 1}


async def test_http_operations_on_a_keys_own_images(settings):
    renderer = FakeRenderer()
    async with open_core(with_keys(settings, KEY, OTHER_KEY), [renderer]) as core, serving(core) as client:
        drawn = await client.draw({"prompt": "a harbour", "seed": 4})
        job = drawn.headers["X-Zbot-Job-Id"]
        varied = await client.post(f"/v1/images/{job}/variations", {"seed": 77})
        upscaled = await client.post(f"/v1/images/{job}/upscale")  # no body: every default
        edited = await client.post(f"/v1/images/{job}/edit", {"prompt": "a harbour at night"})
        resized = await client.post(f"/v1/images/{job}/size", {"size": "wide"})
        others = await client.post(f"/v1/images/{job}/variations", key=OTHER_KEY)
        unknown = await client.post(f"/v1/images/{job}/sharpen")
        no_prompt = await client.post(f"/v1/images/{job}/edit", {})
        extra = await client.post(f"/v1/images/{job}/variations", {"strength": 1})
        png = await varied.read()
        cost = await core.store.query("SELECT operation, cost FROM generations ORDER BY id")
    assert varied.status == 200 and varied.headers["X-Zbot-Seed"] == "77"
    assert varied.headers["X-Zbot-Parent-Id"] == job and varied.headers["X-Zbot-Operation"] == "vary"
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert upscaled.status == 200 and upscaled.headers["X-Zbot-Size"] == "128x128"
    assert edited.status == 200 and edited.headers["X-Zbot-Seed"] == "4"
    assert resized.status == 200 and resized.headers["X-Zbot-Size"] == "96x64" and resized.headers["X-Zbot-Seed"] == "4"
    assert others.status == 404 and unknown.status == 404  # another key's image is not there for this one
    assert no_prompt.status == 422 and extra.status == 422
    assert "unknown field (allowed: image, seed, prompt, size, factor, direction)" in (await extra.json())["error"]
    assert [tuple(r) for r in cost] == [("draw", 1), ("vary", 1), ("upscale", 4), ("edit", 1), ("size", 1)]
    assert renderer.specs[1].source is not None  # the HTTP image was kept: the variation started from it


class SeedChecker:
    """Flags the fake renderer's images of one seed (their red channel is the seed)."""

    name = "by-seed"

    def __init__(self, seed: int):
        self.seed = seed

    def load(self) -> None:
        pass

    def score(self, image) -> float:
        return 0.95 if image.getpixel((5, 5))[0] == self.seed % 256 else 0.05


async def test_http_may_not_refine_a_grid_image_the_key_was_not_given(settings):
    async with open_core(with_keys(settings, KEY), [FakeRenderer()], checker=SeedChecker(21)) as core, \
            serving(core) as client:
        grid = await client.draw({"prompt": "two boats", "seed": 20, "count": 2})
        images = (await grid.json())["images"]
        job = (await grid.json())["job_id"]
        held_back = await client.post(f"/v1/images/{job}/upscale", {"image": 1})
        shown = await client.post(f"/v1/images/{job}/variations", {"image": 0, "seed": 5})
    assert [image["png"] is None for image in images] == [False, True]
    assert held_back.status == 422 and (await held_back.json())["code"] == "image_blocked"
    assert shown.status == 200


async def test_a_deleted_source_cant_be_worked_from_even_through_its_children(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        parent = await draw(core, seed=10)
        varied = await draw(core, parent_id=parent.job_id, operation=Operation.VARY)
        await core.lifecycle.deleted(parent.job_id)  # a moderator removed the original
        for request in [DrawRequest(user_id=1, prompt="x", parent_id=varied.job_id),  # a reroll
                        DrawRequest(user_id=1, prompt="y", parent_id=varied.job_id, operation=Operation.EDIT)]:
            with pytest.raises(BadInput, match="starts from was deleted"):
                await core.service.submit(request)


async def test_the_sweep_keeps_what_a_queued_job_starts_from_and_nothing_older(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        old = await core.store.record(user_id=1, prompt="p", seed=1, width=64, height=64, steps=8, status="posted",
                                      created_at=1.0)
        stale = await core.store.record(user_id=1, prompt="p", seed=2, width=64, height=64, steps=8,
                                        status="posted", created_at=1.0)
        waiting = await core.store.record(user_id=1, prompt="p", seed=3, width=64, height=64, steps=8,
                                          status="queued", source_id=old, source_index=0, strength=0.7,
                                          owner=core.lifecycle.owner)
        for job in (old, stale):
            core.lifecycle.images.save(job, b"\x89PNG\r\n\x1a\n...IEND\xaeB`\x82")
        await core.lifecycle.adopt_orphans()  # sweeps
        assert core.lifecycle.images.job_ids() == [old]  # the queued variation's source stays
        await core.lifecycle.failed(waiting, "gave up")
        await core.lifecycle.adopt_orphans()
        assert core.lifecycle.images.job_ids() == []
