"""Discord's edges through the fake Discord: refusals stay private when admission is slow enough to be
acknowledged publicly first, and /queue with jobs another zbot on the same database holds."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from support.botkit import bot_settings, finished, running_bot

EPHEMERAL = 1 << 6
LOCK_HELD_S = 2.5  # past delivery's ACK_BUDGET_S (1.5 s): the bot defers before admission answers


def hold_write_lock(database, held_s: float = LOCK_HELD_S) -> tuple[threading.Thread, threading.Event]:
    """Another process writing: a real connection holds SQLite's write lock for `held_s`."""
    locked = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(database, timeout=10)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(held_s)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    return holder, locked


@pytest.mark.parametrize("refusal", ["blocked word", "limit"])
async def test_a_refusal_after_a_slow_admission_stays_private_and_an_admission_still_posts(
        fake, tmp_path, tiny_model, refusal):
    settings = bot_settings(tmp_path, tiny_model, blocked_words=["gore"], rate_limits="1/minute")
    other = fake.add_member(name="other")
    async with running_bot(fake, settings):
        if refusal == "limit":  # the minute's one image, drawn before the database gets slow
            await (await fake.slash("draw", {"prompt": "first", "size": "small"})).wait_original(finished)
        holder, _ = hold_write_lock(settings.database)
        try:
            refused, admitted = await asyncio.gather(
                fake.slash("draw", {"prompt": "much gore" if refusal == "blocked word" else "again",
                                    "size": "small"}),
                fake.slash("draw", {"prompt": "patient fox", "size": "small"}, user_id=other))
            [told] = await refused.wait_followups(1, timeout=10)
            image = await admitted.wait_original(finished, timeout=30)
        finally:
            await asyncio.to_thread(holder.join)
    said = "blocked word" if refusal == "blocked word" else "limit of 1 image per minute"
    assert refused.response_type == admitted.response_type == 5  # both deferred, publicly
    assert told.flags & EPHEMERAL and said in told.content
    assert not [m for m in fake.messages.values() if said in m.content and not m.ephemeral and not m.deleted]
    assert refused.original.deleted  # the public "thinking…" is gone, with nothing written in it
    assert not image.ephemeral and not image.deleted and "patient fox" in image.content


async def test_queue_shows_jobs_another_zbot_holds_as_held_there_and_offers_only_its_own_to_cancel(
        fake, tmp_path, tiny_model):
    admin = fake.add_member(name="mod", roles=(fake.add_role("Mods", permissions=1 << 5),))  # Manage Server
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        run.engine.gate.clear()  # our first job holds the GPU, our second waits
        first = await fake.slash("draw", {"prompt": "ours, drawing", "size": "small"})
        await first.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        second = await fake.slash("draw", {"prompt": "ours, waiting", "size": "small"})
        await second.wait_original(lambda m: "Queued" in m.content)
        # A job of another zbot on the same database: in its queue, not in ours.
        theirs = await run.core.store.record(user_id=fake.user_id, guild_id=fake.guild_id, channel_id=fake.channel_id,
                                             prompt="theirs, waiting", status="queued", owner="00000001deadbeef",
                                             size="small", width=64, height=64, steps=8)
        listing = await (await fake.slash("queue", user_id=admin)).wait_original()
        run.engine.gate.set()
        await first.wait_original(finished, timeout=60)
        await second.wait_original(finished, timeout=60)
        await run.settle()
    lines = listing.content.split("\n")[1:]
    assert "#None" not in listing.content
    assert [line.split(" · ")[0] for line in lines] == ["• drawing now", "• #1", "• held by another zbot"]
    assert "theirs, waiting" in lines[2]
    [menu] = [c for c in listing.walk_components() if c.get("type") == 3]
    assert theirs == 3 and [option["value"] for option in menu["options"]] == ["2"]  # ours waiting, only
