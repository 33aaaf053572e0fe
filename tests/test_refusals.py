"""Refusals are counted, not stored; hostile input is a 4xx, never a traceback; a flagged image counts
against the limits; the HTTP re-check of a kept image waits for the model like Discord's."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from PIL import Image
from support.botkit import bot_settings, finished, running_bot
from support.fake_discord import EPHEMERAL
from support.renderers import FakeRenderer
from test_http import KEY, serving, with_keys
from test_safety import ScriptedChecker

from zbot.app import open_core
from zbot.core.drawn import DrawnImages, drawn_dir
from zbot.core.usage import usage_report
from zbot.http.api import key_user_id


def errors(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def database_bytes(store) -> int:
    """The database proper (its pages), whatever the write-ahead log holds for the moment."""
    pages = await store.scalar(store.connection, "PRAGMA page_count")
    return pages * await store.scalar(store.connection, "PRAGMA page_size")


# -- defect 5: refusals are counted ----------------------------------------------------------------

async def test_500_refused_http_requests_leave_the_database_as_it_was_and_stats_still_see_them(settings):
    settings = with_keys(settings, KEY, rate_limits="1/minute")
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        assert (await client.draw({"prompt": "the one allowed"})).status == 200
        await core.service.drain()
        before = await database_bytes(core.store)
        statuses = []
        for batch in range(10):  # 50 at a time: as a script hammering the API would
            answers = await asyncio.gather(*(client.draw({"prompt": f"{batch}-{i} " + "a long prompt " * 70})
                                             for i in range(50)))
            statuses += [answer.status for answer in answers]
        after = await database_bytes(core.store)
        rows = await core.store.scalar(core.store.connection, "SELECT count(*) FROM generations")
        report = await usage_report(core.store, now=time.time())
        mine = await usage_report(core.store, now=time.time(), user_id=key_user_id(KEY))
    assert statuses == [429] * 500 and rows == 1
    assert after - before <= 8 * 1024, (before, after)  # was 500 rows of 1,000 characters: ~0.6 MB
    assert report.refusals == {"rate_limited": 500} and report.by_status["rejected"] == 500
    [user] = report.refused_users
    assert (user.user_id, user.by_reason, user.total) == (key_user_id(KEY), {"rate_limited": 500}, 500)
    assert user.last_prompt.startswith("9-") and len(user.last_prompt) == 200  # a sample, cut short
    assert mine.refusals == {"rate_limited": 500}


# -- defect 6: hostile input -----------------------------------------------------------------------

async def test_a_lone_surrogate_or_an_id_past_sqlites_integers_is_a_4xx_and_logs_no_error(settings, caplog):
    caplog.set_level(logging.INFO)
    async with open_core(with_keys(settings, KEY), [FakeRenderer()]) as core, serving(core) as client:
        drawn = await client.draw({"prompt": "a fox"})
        job = drawn.headers["X-Zbot-Job-Id"]
        surrogate = await client.draw({"prompt": "a fox \ud800 in the snow"})  # JSON allows it: "\ud800"
        edited = await client.post(f"/v1/images/{job}/edit", {"prompt": "\udfff"})
        huge = [await client.post(f"/v1/images/{image_id}/variations") for image_id in (2**63, 10**30)]
        await core.service.drain()
        counted = await core.store.query("SELECT reason, count, sample FROM refusals")
    assert drawn.status == 200
    for answer in (surrogate, edited):
        body = await answer.json()
        assert answer.status == 422 and body["code"] == "bad_input" and "lone surrogates" in body["error"]
    for answer in huge:
        assert answer.status == 404 and (await answer.json())["code"] == "not_found"
    assert errors(caplog) == []
    # Counted like any refusal, the prompt kept as it can be stored.
    assert sum(row["count"] for row in counted) == 2 and "\\udfff" in {row["sample"] for row in counted}


async def test_a_forged_button_id_past_sqlites_integers_is_answered_privately(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)):
        image = await (await fake.slash("draw", {"prompt": "a fox", "size": "small"})).wait_original(finished)
        forged = "zbot:reroll:99999999999999999999"
        image.component(image.custom_ids[0])["custom_id"] = forged  # a client sending what it likes
        answer = await (await fake.click(image, forged)).wait_response()
    # The fake fails the test on any error logged (a traceback from sqlite3's OverflowError was one).
    assert answer.data["flags"] & EPHEMERAL and "no longer in my records" in answer.data["content"]


def test_an_id_past_sqlites_integers_on_the_command_line_is_a_usage_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZBOT_")}
    done = subprocess.run([sys.executable, "-m", "zbot.cli.main", "stats", "--user", "99999999999999999999"], cwd=tmp_path,
                          env={**env, "ZBOT_SAFETY": "off"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not an id" in done.stderr and "Traceback" not in done.stderr


# -- the suspect: the HTTP re-check of a kept image waits for the model -----------------------------

class SlowLoading(FakeRenderer):
    """A model still loading (capturing its CUDA graphs) until the test lets it finish."""

    def __init__(self):
        super().__init__()
        self.loading = threading.Event()

    def load(self) -> None:
        self.loading.wait(30)
        super().load()


class CheckerOnTheGpu(ScriptedChecker):
    """On the model's GPU, like the vit checker with ZBOT_SAFETY_DEVICE=auto; notes whether the model was
    ready each time it scored."""

    device = SimpleNamespace(type="cuda")

    def __init__(self, score: float):
        super().__init__(score)
        self.ready: asyncio.Event | None = None
        self.ready_when_scored: list[bool] = []

    def score(self, image) -> float:
        self.ready_when_scored.append(self.ready.is_set())
        return super().score(image)


async def test_the_http_recheck_of_a_kept_grid_image_waits_for_the_model(settings):
    renderer, checker = SlowLoading(), CheckerOnTheGpu(0.1)
    async with open_core(with_keys(settings, KEY), [renderer], checker=checker) as core, serving(core) as client:
        try:
            checker.ready = core.executor.ready
            grid = await core.store.record(user_id=key_user_id(KEY), source="http", prompt="two foxes", seed=1,
                                           size="square", width=64, height=64, steps=8, status="posted", count=2,
                                           cost=2)
            kept = io.BytesIO()
            Image.linear_gradient("L").convert("RGB").resize((64, 64)).save(kept, "PNG")
            for index in (0, 1):
                DrawnImages(drawn_dir(settings.database)).save(grid, kept.getvalue(), index)
            read = asyncio.Event()
            image = core.lifecycle.image

            async def reading(*args):
                try:
                    return await image(*args)
                finally:
                    read.set()

            core.lifecycle.image = reading
            asked = asyncio.create_task(client.post(f"/v1/images/{grid}/variations", {"image": 1}))
            await asyncio.wait_for(read.wait(), 10)
            await asyncio.sleep(0.3)  # the re-check, were it not waiting, would have run by now
            scored_while_loading = checker.seen
        finally:
            renderer.loading.set()
        answer = await asyncio.wait_for(asked, 30)
    assert scored_while_loading == 0
    assert answer.status == 200 and checker.ready_when_scored and all(checker.ready_when_scored)


# -- the policy: a flagged image costs what any image costs -----------------------------------------

async def test_a_flagged_draw_uses_up_the_limit_and_stats_show_it_per_member(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model, rate_limits="1/minute", admin_ids=[fake.owner_id])
    async with running_bot(fake, settings, ScriptedChecker(0.93)) as run:
        flagged = await fake.slash("draw", {"prompt": "something flagged", "size": "small"})
        [notice] = await flagged.wait_followups(1, timeout=30)
        await run.settle()
        again = await (await fake.slash("draw", {"prompt": "once more", "size": "small"})).wait_response()
        stats = await fake.slash("stats", user_id=fake.owner_id)
        [report] = await stats.wait_followups(1)
    assert notice.flags & EPHEMERAL and "still counts against your limits" in notice.content
    assert again.data["flags"] & EPHEMERAL and "reached your limit of 1 image per minute" in again.data["content"]
    fields = {f["name"]: f["value"] for f in report.embeds[0]["fields"]}
    assert fields["Flagged, by member"] == f"<@{fake.user_id}>: 1"
    assert fields["Refused, by member"] == f"<@{fake.user_id}>: 1 (over a rate limit 1)"
    assert "1 withheld" in fields["Safety"] and "1 refused" in fields["Failures"]


async def test_the_rejected_rows_kept_so_far_become_counts_by_reason_and_hour(tmp_path):
    from zbot.core.store import Store

    old = await Store.open(tmp_path / "db.sqlite3", migrate_to=8)
    hour = 1_800_000_000.0 // 3600 * 3600
    for at, error in [(hour + 1, "You've reached your limit of 1 image per minute."),
                      (hour + 2, "You may draw only 1 more image right now (2 images per minute): ask for 1 ..."),
                      (hour + 3, "Your prompt contains a blocked word ('gore'); please rephrase it."),
                      (hour + 3601, "The queue is full (100 requests waiting).")]:
        await old.record(user_id=7, guild_id=5, prompt=f"asked at {at}", status="rejected", error=error, created_at=at)
    await old.record(user_id=7, guild_id=5, prompt="drawn", status="posted", created_at=hour)
    await old.close()
    store = await Store.open(tmp_path / "db.sqlite3")
    counted = [tuple(r) for r in await store.query(
        "SELECT guild_id, reason, hour - ?, count, sample FROM refusals ORDER BY hour, reason", (hour,))]
    statuses = await store.column(store.connection, "SELECT status FROM generations")
    await store.close()
    assert counted == [(5, "bad_input", 0, 1, f"asked at {hour + 3}"),
                       (5, "rate_limited", 0, 2, f"asked at {hour + 2}"),
                       (5, "queue_full", 3600, 1, f"asked at {hour + 3601}")]
    assert statuses == ["posted"]
