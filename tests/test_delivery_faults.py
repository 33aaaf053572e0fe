"""Nothing lost between a finished render and a posted message, whatever Discord, the network or the
database does meanwhile. Each test injects the failure itself, through the fake Discord or SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from support.botkit import bot_settings, control, finished, image_of, posted_images, running_bot, seed_in
from support.fake_discord import DROPPED, FakeDiscord, fast_discord_sleeps

SUPPRESS_EMBEDS = 1 << 2
CONTENT_LIMIT = 2000


async def rows(run) -> list[tuple]:
    return [tuple(r) for r in await run.core.store.query("SELECT status, message_id FROM generations ORDER BY id")]


def quick_retries(run) -> None:
    run.bot.drawing.poster.backoff_s = 0.05


async def test_a_dropped_progress_edit_does_not_stop_the_delivery(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        # Held after its first step: the first edit of the answer is a progress edit ("Drawing…"), dropped.
        run.engine.hold_after_first_step = True
        dropped = fake.drop_next("PATCH", r"/messages/@original")
        ix = await fake.slash("draw", {"prompt": "through a bad network", "size": "small"})
        await ix.wait_original(lambda m: "Drawing" in m.content, timeout=30)  # the next edit got through
        run.engine.go_on.release()
        message = await ix.wait_original(finished, timeout=30)
        await run.settle()
        recorded = await rows(run)
    patches = [r.status for r in fake.request_log if r.method == "PATCH" and r.path.endswith("@original")]
    assert dropped.hits == 1 and patches[0] == DROPPED and len(patches) > 2  # progress went on after it
    assert "through a bad network" in message.content
    assert recorded == [("posted", message.id)] and len(posted_images(fake)) == 1


@pytest.mark.parametrize("applied", [False, True], ids=["lost-before", "applied-then-lost"])
async def test_a_dropped_upload_is_tried_again_and_posted_once(fake, tmp_path, tiny_model, applied):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        quick_retries(run)
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": "a fox", "size": "small"})
        await ix.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        dropped = fake.drop_next("PATCH", r"/messages/@original", after_processing=applied)
        run.engine.gate.set()
        message = await ix.wait_original(finished, timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert dropped.hits == 1 and recorded == [("posted", message.id)]
    assert posted_images(fake) == [message]  # an edit is safe to repeat: one image, in the interaction's message


@pytest.mark.parametrize("applied", [False, True], ids=["lost-before", "applied-then-lost"])
async def test_a_dropped_channel_post_is_tried_again_and_posted_once(fake, tmp_path, tiny_model, applied):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        quick_retries(run)
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": "late fox", "size": "small"})
        await ix.wait_response()
        fake.expire_token(ix)
        # Applied then lost: the retry carries the same nonce, and Discord answers with the first message.
        dropped = fake.drop_next("POST", r"/channels/\d+/messages", times=2, after_processing=applied)
        run.engine.gate.set()
        posted = await fake.wait_for(lambda f: next(iter(posted_images(f)), None), timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert dropped.hits == 2 and posted.source == "channel" and "late fox" in posted.content
    assert recorded == [("posted", posted.id)] and len(posted_images(fake)) == 1


async def test_a_server_error_that_outlasts_discord_py_s_retries_is_tried_again_later(fake, tmp_path, tiny_model):
    with fast_discord_sleeps():
        async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
            quick_retries(run)
            fake.fail_next("PATCH", r"/messages/@original", 502, times=None)
            failing = fake.fail_next("POST", r"/channels/\d+/messages", 502, times=12)  # two rounds of 5 tries, and more
            ix = await fake.slash("draw", {"prompt": "persistent", "size": "small"})
            await ix.wait_response()
            posted = await fake.wait_for(lambda f: next(iter(posted_images(f)), None), timeout=60)
            fake.clear_faults()
            fake.take_logged_errors()
            await run.settle()
            recorded = await rows(run)
    assert failing.hits == 12 and recorded == [("posted", posted.id)]


@pytest.mark.parametrize("expired", [False, True], ids=["interaction", "channel"])
async def test_a_long_prompt_that_escaping_doubles_is_still_posted(fake, tmp_path, tiny_model, expired):
    prompt = "_" * 1000  # each escaped: 2,000 characters of prompt alone
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": prompt, "size": "small"})
        await ix.wait_response()
        if expired:
            fake.expire_token(ix)
        run.engine.gate.set()
        message = await fake.wait_for(lambda f: next(iter(posted_images(f)), None), timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert len(message.content) <= CONTENT_LIMIT and "\\_\\_\\_" in message.content and "…" in message.content
    assert f"seed {seed_in(message)}" in message.content
    assert recorded == [("posted", message.id)]
    assert not [r for r in fake.request_log if r.status == 400]


async def test_a_caption_discord_refuses_is_replaced_by_a_short_one(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": "an odd caption", "size": "small"})
        await ix.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        refused = fake.fail_next("PATCH", r"/messages/@original", 400, json_body={
            "code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_BAD", "message": "Something Discord didn't like."}]}}})
        run.engine.gate.set()
        message = await ix.wait_original(finished, timeout=30)
        await run.settle()
        recorded = await rows(run)
    assert refused.hits == 1 and recorded == [("posted", message.id)]
    assert message.content.startswith("seed ") and f"<@{fake.user_id}>" in message.content


async def test_echoed_prompts_cannot_format_the_message_or_preview_links(fake, tmp_path, tiny_model):
    prompt = ("a fox\n# HEADLINE\n-# small print\n> quote [free nitro](https://evil.example/claim) "
              "see https://example.com/x_y and ||spoiler||")
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        run.engine.gate.clear()
        ix = await fake.slash("draw", {"prompt": prompt, "size": "small"})
        await ix.wait_response()
        fake.expire_token(ix)  # the channel post, where Discord would show link previews
        run.engine.gate.set()
        posted = await fake.wait_for(lambda f: next(iter(posted_images(f)), None), timeout=30)
    first_line = posted.content.split("\n")[0]
    assert posted.content.count("\n") == 1  # the prompt's own lines are joined: no heading, no quote
    assert "\\# HEADLINE" in first_line and "\\-\\# small print" in first_line and "\\> quote" in first_line
    assert "\\[free nitro\\]" in first_line  # no masked link
    assert "<https://evil.example/claim>" in first_line and "<https://example.com/x_y>" in first_line
    assert "\\|\\|spoiler\\|\\|" in first_line
    assert posted.flags & SUPPRESS_EMBEDS and posted.pings == {f"user:{fake.user_id}"}


async def test_an_admission_slow_enough_to_defer_and_a_failing_defer_still_deliver(fake, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model)
    async with running_bot(fake, settings) as run:
        quick_retries(run)
        dropped = fake.drop_next("POST", r"/interactions/\d+/[^/]+/callback", times=2)
        locked, release = threading.Event(), threading.Event()

        def hold_the_database() -> None:  # another process writing: admission waits for the lock
            other = sqlite3.connect(settings.database, timeout=10)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(30)
            other.execute("ROLLBACK")
            other.close()

        holder = threading.Thread(target=hold_the_database)
        holder.start()
        locked.wait(10)
        try:
            await fake.slash("draw", {"prompt": "patience", "size": "small"})
            await fake.wait_for(lambda f: dropped.hits >= 1, timeout=10)  # the defer, after 1.5 s, is lost
        finally:
            release.set()
            holder.join()
        posted = await fake.wait_for(lambda f: next(iter(posted_images(f)), None), timeout=30)
        await run.settle()
        recorded = await rows(run)
        fake.take_logged_errors()
    assert dropped.hits == 2 and "patience" in posted.content and posted.source == "channel"
    assert recorded == [("posted", posted.id)]


async def test_a_failed_database_write_after_the_render_keeps_the_image_and_posts_it(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        fake.fail_on_logged_errors = False  # the failed write is logged as an error, as it should be
        await run.core.store.connection.execute(
            "CREATE TEMP TRIGGER disk_full BEFORE UPDATE OF status ON generations "
            "WHEN NEW.status IN ('drawn', 'done') BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        message = await (await fake.slash("draw", {"prompt": "kept", "size": "small"})).wait_original(finished)
        await run.core.store.connection.execute("DROP TRIGGER disk_full")
        await run.settle()
        recorded = await rows(run)
        logged = [r.getMessage() for r in fake.take_logged_errors()]
    assert image_of(message).size == (64, 64) and recorded == [("posted", message.id)]
    # Logged once, by the store, with the reason (the job's own retry is a warning).
    assert [line for line in logged if "refuses writes" in line] == [
        line for line in logged if "database or disk is full" in line] and len(logged) == 1


async def test_a_deleted_image_is_gone_for_reroll_but_still_counts(fake, tmp_path, tiny_model):
    async with running_bot(fake, bot_settings(tmp_path, tiny_model, rate_limits="5/minute")) as run:
        image = await (await fake.slash("draw", {"prompt": "regrettable", "size": "small"})).wait_original(finished)
        await fake.click(image, control(image, "delete"))
        await fake.wait_for(lambda f: image.deleted)
        await run.settle()
        reroll = await (await fake.slash("reroll")).wait_response()
        quota = await (await fake.slash("quota")).wait_response()
        recorded = await rows(run)
    assert recorded == [("deleted", image.id)]
    assert "no image in this channel to reroll" in reroll.data["content"]
    assert "4 of 5 left" in quota.data["content"]


async def test_kept_images_are_posted_after_a_restart_however_old_and_nothing_kept_is_drawn_again(
        fake, tmp_path, tiny_model):
    import time

    from zbot.bot.recovery import resume_unfinished
    from zbot.core.drawn import DrawnImages, drawn_dir
    from zbot.core.store import Store

    settings = bot_settings(tmp_path, tiny_model)
    png = (tmp_path / "kept.png")
    store = await Store.open(settings.database)
    old = time.time() - 7200  # older than ZBOT_RECOVERY_MAX_AGE (an hour)
    common = dict(user_id=fake.user_id, guild_id=fake.guild_id, channel_id=fake.channel_id, size="small",
                  width=64, height=64, steps=8, created_at=old, owner=None)
    kept_old = await store.record(prompt="kept for hours", seed=1, status="drawn", **common)
    kept_running = await store.record(prompt="drawn, not recorded", seed=2, status="running", **common)
    gone = await store.record(prompt="never kept", seed=3, status="drawn", **common)
    await store.close()
    from PIL import Image

    images = DrawnImages(drawn_dir(settings.database))
    for job_id, colour in ((kept_old, "red"), (kept_running, "blue")):
        kept = Image.new("RGB", (64, 64), colour)
        kept.putpixel((0, 0), (255, 255, 255))  # one flat colour would be a broken image
        kept.save(png)
        images.save(job_id, png.read_bytes())
    async with running_bot(fake, settings) as run:
        run.engine.gate.clear()  # nothing may be drawn
        await resume_unfinished(run.bot)
        await fake.wait_for(lambda f: len(images_in_channel(f)) == 2, timeout=30)
        await run.bot.delivery.wait(30)
        recorded = await rows(run)
        run.engine.gate.set()
    posted = images_in_channel(fake)
    assert [image_of(m).getpixel((9, 9)) for m in posted] == [(255, 0, 0), (0, 0, 255)]
    assert [r[0] for r in recorded] == ["posted", "posted", "failed"]
    assert not run.engine.started.is_set()  # nothing drawn again
    assert not any("lost" in m.content for m in fake.bot_messages)  # and nobody pinged about old news
    # Posted, they stay kept (variations start from them) for ZBOT_KEEP_IMAGES_DAYS.
    assert images.job_ids() == [kept_old, kept_running] and gone == 3


def images_in_channel(fake: FakeDiscord) -> list:
    return [m for m in posted_images(fake) if m.source == "channel"]
