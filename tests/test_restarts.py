"""Restarts, the way they happen to a real bot: SIGTERM from a service manager, kill -9 mid-render."""

from __future__ import annotations

import signal
import sqlite3
import time

from support.botkit import finished
from support.fake_discord import FakeDiscord
from support.render_gate import holding_renders
from test_run_process import bot_env, start, stop


def channel_images(fake: FakeDiscord) -> list:
    return [m for m in fake.bot_messages if m.source == "channel" and m.attachments]


async def draw_three(fake: FakeDiscord) -> list:
    interactions = []
    for prompt, user in zip(("first", "second", "third"), (fake.user_id, fake.owner_id, fake.user_id)):
        ix = await fake.slash("draw", {"prompt": prompt}, user_id=user)
        await ix.wait_response(timeout=10)
        interactions.append(ix)
    # Held after its first step (support/render_gate.py): it is mid-render until the test opens the gate.
    await interactions[0].wait_original(lambda m: "Drawing" in m.content, timeout=60)
    return interactions


async def test_sigterm_finishes_the_running_job_keeps_the_queue_and_the_next_start_posts_it(tmp_path, tiny_model):
    async with FakeDiscord() as fake:
        env, gate = holding_renders(tmp_path, bot_env(fake, tmp_path, tiny_model))
        process = await start(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            first, second, third = await draw_three(fake)
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            # The queued jobs are told at once, while the first is still held mid-render; then it may finish.
            for ix in (second, third):
                await ix.wait_original(lambda m: "restarting" in m.content, timeout=30)
            assert process.returncode is None and not finished(first.original)
            gate.touch()
            code, output = await stop(process, timeout=60)
            stopped_in = time.monotonic() - began
        except BaseException:
            await stop(process)
            raise
        assert code == 0, output
        assert stopped_in < 30
        assert finished(first.original) and "first" in first.original.content
        for ix in (second, third):
            assert "restarting" in ix.original.content and not ix.original.attachments
        db = sqlite3.connect(tmp_path / "zbot.sqlite3")
        assert [r[0] for r in db.execute("SELECT status FROM generations ORDER BY id")] == ["posted", "queued", "queued"]
        db.close()

        # The next start draws the queued jobs and posts them into their channel, oldest first.
        process = await start(env, tmp_path)
        try:
            await fake.wait_for(lambda f: len(channel_images(f)) == 2, timeout=90)
        finally:
            code, output = await stop(process)
    posted = channel_images(fake)
    assert ["second" in posted[0].content, "third" in posted[1].content] == [True, True]
    assert posted[0].pings == {f"user:{fake.owner_id}"} and posted[1].pings == {f"user:{fake.user_id}"}
    assert len([m for m in fake.bot_messages if m.attachments]) == 3  # nothing posted twice
    assert code == 0, output


async def test_kill_9_mid_render_resumes_oldest_first_and_tells_users_of_stale_jobs(tmp_path, tiny_model):
    async with FakeDiscord() as fake:
        env, gate = holding_renders(tmp_path, bot_env(fake, tmp_path, tiny_model, ZBOT_RECOVERY_MAX_AGE="3600"))
        process = await start(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            await draw_three(fake)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        db = sqlite3.connect(tmp_path / "zbot.sqlite3")
        assert [r[0] for r in db.execute("SELECT status FROM generations ORDER BY id")] == [
            "running", "queued", "queued"]
        # The third job waited so long that drawing it now would surprise its user.
        db.execute("UPDATE generations SET created_at = created_at - 7200 WHERE id = 3")
        db.commit()
        db.close()

        gate.touch()
        process = await start(env, tmp_path)
        try:
            await fake.wait_for(lambda f: len(channel_images(f)) == 2, timeout=90)
            await fake.wait_for(lambda f: any("lost when the bot restarted" in m.content for m in f.bot_messages),
                                timeout=30)
        finally:
            code, output = await stop(process)  # once it has exited, nothing more can be posted
    assert code == 0, output
    posted = channel_images(fake)
    assert len(posted) == 2 and "first" in posted[0].content and "second" in posted[1].content
    told = [m for m in fake.bot_messages if "lost when the bot restarted" in m.content]
    assert len(told) == 1 and "third" in told[0].content and told[0].pings == {f"user:{fake.user_id}"}
    db = sqlite3.connect(tmp_path / "zbot.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT status, message_id IS NOT NULL FROM generations ORDER BY id").fetchall()
    db.close()
    assert rows == [("posted", 1), ("posted", 1), ("failed", 0)]


async def test_killed_between_drawing_and_posting_the_next_start_posts_the_kept_image_without_drawing_it(
        tmp_path, tiny_model):
    database = tmp_path / "zbot.sqlite3"
    async with FakeDiscord() as fake:
        env = bot_env(fake, tmp_path, tiny_model)
        process = await start(env, tmp_path)
        try:
            await fake.wait_connected(timeout=60)
            # Discord refuses every post (the bot lost its permissions for a while): the image is drawn,
            # kept, and its post tried again and again.
            fake.fail_next("PATCH", r"/messages/@original", 403, times=None)
            refused = fake.fail_next("POST", r"/channels/\d+/messages", 403, times=None)
            await fake.slash("draw", {"prompt": "kept safe", "seed": 7})
            await fake.wait_for(lambda f: refused.hits >= 1, timeout=60)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        db = sqlite3.connect(database)
        [(status, finished_at, render_s)] = db.execute("SELECT status, finished_at, render_s FROM generations")
        db.close()
        kept = (tmp_path / "zbot.sqlite3-drawn" / "1.png").read_bytes()
        assert status == "drawn" and kept.startswith(b"\x89PNG")

        fake.clear_faults()
        process = await start(env, tmp_path)
        try:
            posted = await fake.wait_for(lambda f: next(iter(channel_images(f)), None), timeout=60)
        finally:
            code, output = await stop(process)
    assert code == 0, output
    assert posted.attachments[0].data == kept and "kept safe" in posted.content and "seed 7" in posted.content
    assert "posting job 1, drawn before the restart" in output
    db = sqlite3.connect(database)
    row = db.execute("SELECT status, message_id, finished_at, render_s FROM generations").fetchone()
    db.close()
    assert row == ("posted", posted.id, finished_at, render_s)  # not drawn again: the same render
    assert (tmp_path / "zbot.sqlite3-drawn" / "1.png").exists()  # kept on: variations start from it
