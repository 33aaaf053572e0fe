import asyncio
import io
import time
from dataclasses import fields

import pytest
from PIL import Image
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.core.jobs import REQUEST_ONLY, BadInput, DrawRequest, NewJob, Operation, RenderFailed, ShuttingDown
from zbot.core.usage import usage_report


@pytest.mark.parametrize("changes, message", [
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   \n\t "), "prompt is empty"),
    (dict(prompt="x" * 1001), "most allowed is 1000"),
    (dict(seed=-1), "from 0 to 4294967295"),
    (dict(seed=2**32), "from 0 to 4294967295"),
    (dict(size="huge"), "choose one of: square, wide"),
    (dict(steps=0), "between 1 and 50"),
    (dict(steps=51), "between 1 and 50"),
])
async def test_bad_input_is_refused_and_never_reaches_the_queue(settings, changes, message):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        request = DrawRequest(**{**dict(user_id=1, prompt="a fox"), **changes})
        with pytest.raises(BadInput, match=message):
            await core.service.submit(request)
        assert core.executor.depth == 0
        assert await core.store.query("SELECT * FROM generations") == []  # counted, not kept as a row
        rows = await core.store.query("SELECT reason, count, error FROM refusals")
        assert [tuple(r)[:2] for r in rows] == [("bad_input", 1)] and message.split()[-1] in rows[0][2]
    assert renderer.ran == []


async def test_a_draw_is_recorded_from_queued_to_done(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        ticket = await core.service.submit(DrawRequest(user_id=5, prompt="  a fox  ", seed=42, guild_id=9,
                                                       channel_id=10, size="wide"))
        result = await ticket.result()
        await core.service.drain()
        row = await core.store.get(ticket.job_id)
    assert (result.seed, result.width, result.height, result.prompt) == (42, 96, 64, "a fox")
    assert row.status == "drawn" and row.seed == 42 and row.size == "wide" and row.steps == 8
    assert row.created_at <= row.started_at <= row.finished_at and row.render_s >= 0
    assert (row.guild_id, row.channel_id) == (9, 10)


async def test_a_random_seed_is_drawn_and_returned(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        seeds = set()
        for _ in range(3):
            ticket = await core.service.submit(DrawRequest(user_id=0, prompt="p", is_admin=True))
            seeds.add((await ticket.result()).seed)
    assert len(seeds) == 3 and all(0 <= s < 2**32 for s in seeds)


async def test_a_failed_render_is_recorded_with_its_reason(settings):
    async with open_core(settings, [FakeRenderer(fail_prompts=("bad",))]) as core:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="bad"))
        with pytest.raises(RenderFailed):
            await ticket.result()
        await core.service.drain()
        row = await core.store.get(ticket.job_id)
    assert row.status == "failed" and "renderer failed" in row.error


async def test_shutdown_leaves_queued_jobs_queued_in_the_database(settings):
    renderer = FakeRenderer()
    renderer.gate.clear()
    async with open_core(settings, [renderer]) as core:
        tickets = [await core.service.submit(DrawRequest(user_id=u, prompt="p")) for u in (1, 2, 3)]
        while tickets[0].position() != 0:
            await asyncio.sleep(0.01)
        asyncio.get_running_loop().call_later(0.1, renderer.gate.set)
    await tickets[0].result()
    for ticket in tickets[1:]:
        with pytest.raises(ShuttingDown):
            await ticket.result()
    from zbot.core.store import Store

    store = await Store.open(settings.database)
    statuses = [(await store.get(t.job_id)).status for t in tickets]
    await store.close()
    assert statuses == ["drawn", "queued", "queued"]


async def test_usage_report_counts_and_percentiles(settings):
    async with open_core(settings, [FakeRenderer(fail_prompts=("bad",))]) as core:
        for user, prompt in [(1, "a"), (1, "b"), (2, "c"), (2, "bad")]:
            ticket = await core.service.submit(DrawRequest(user_id=user, prompt=prompt))
            try:
                await ticket.result()
            except RenderFailed:
                pass
        with pytest.raises(BadInput):
            await core.service.submit(DrawRequest(user_id=3, prompt=""))
        await core.service.drain()
        report = await usage_report(core.store, now=time.time())
        one = await usage_report(core.store, now=time.time(), user_id=2)
    assert report.images == 3 and report.by_status["failed"] == 1 and report.by_status["rejected"] == 1
    assert report.images_24h == 3 and report.render.count == 3 and report.wait.p95 >= report.wait.median >= 0
    assert [(u.user_id, u.done, u.failed) for u in report.top_users][:2] == [(1, 2, 0), (2, 1, 1)]
    assert len(report.per_day) == 1 and report.per_day[0][1] == 3
    assert one.images == 1 and one.by_status == {"drawn": 1, "failed": 1}


async def test_blocked_words_and_channels_are_refused_saying_why(settings):
    settings = settings.model_copy(update={"blocked_words": ["gore", "weapon"], "channel_ids": [100, 200]})
    async with open_core(settings, [FakeRenderer()]) as core:
        with pytest.raises(BadInput, match=r"blocked word \('gore'\)"):
            await core.service.submit(DrawRequest(user_id=1, prompt="Lots of GORE please", channel_id=100))
        with pytest.raises(BadInput, match="<#100>, <#200>"):
            await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=300))
        # Whole words only: "weaponry" is not "weapon"; and the allowed channel draws.
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="medieval weaponry", channel_id=200))
        assert (await ticket.result()).prompt == "medieval weaponry"


async def test_every_request_field_reaches_its_column_or_is_named_as_steering_only(settings):
    # A new /draw option is either a column (a NewJob field of the same name) or listed in REQUEST_ONLY:
    # it can't be forgotten on the way to the database.
    asked, stored = {f.name for f in fields(DrawRequest)}, {f.name for f in fields(NewJob)}
    assert asked - stored == REQUEST_ONLY
    start = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(start, "PNG")
    settings = settings.model_copy(update={"max_count": 4})
    async with open_core(settings, [FakeRenderer()]) as core:
        parent = await core.service.submit(DrawRequest(user_id=1, prompt="a lighthouse", count=1))
        await parent.result()
        common = dict(user_id=77, prompt="a fox", size="wide", seed=1234, steps=6, guild_id=3, channel_id=4,
                      interaction_id=5, parent_id=parent.job_id, is_admin=True)
        requests = [DrawRequest(**common, source="http", count=3, operation=Operation.REROLL),
                    DrawRequest(**common, source="cli", count=1, operation=Operation.FROM_FILE,
                                from_image=start.getvalue(), strength=0.25)]
        rows = []
        for request in requests:
            ticket = await core.service.submit(request)
            await ticket.result()
            rows.append(await core.store.get(ticket.job_id))
        await core.service.drain()
    for request, row in zip(requests, rows):
        for name in sorted(asked & stored):
            if getattr(request, name) is not None:
                assert getattr(row, name) == getattr(request, name), name
