"""A database that refuses writes (a full disk, made here with SQLite's max_page_count, so that no real
disk fills): requests get a short apology, the failure is logged once, /healthz shows it, jobs already
taken are not lost, and everything works again once writes succeed."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from support.botkit import bot_settings, finished, running_bot

from zbot.run import bot_health


async def fill_up(store) -> None:
    """Let the database grow by two pages at most, then fill them: every later insert fails with
    SQLITE_FULL ("database or disk is full")."""
    conn = store.connection
    pages = await store.scalar(conn, "PRAGMA page_count")
    await conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    for size in (3000, 300, 30, 1):
        try:
            while True:
                await store.write("INSERT INTO bot_state (key, value) VALUES (hex(randomblob(16)), ?)", ("x" * size,))
        except sqlite3.OperationalError as error:
            assert "full" in str(error)
    try:
        while True:
            await store.write("INSERT INTO generations (user_id, prompt, status, created_at) VALUES (0, 'x', "
                              "'rejected', 0)")
    except sqlite3.OperationalError:
        pass


async def test_a_full_database_refuses_politely_recovers_and_loses_no_admitted_job(fake, tmp_path, tiny_model, caplog):
    caplog.set_level(logging.INFO)
    async with running_bot(fake, bot_settings(tmp_path, tiny_model)) as run:
        health = bot_health(run.core, run.bot)
        run.engine.gate.clear()
        taken = await fake.slash("draw", {"prompt": "taken before the disk filled", "size": "small"})
        await taken.wait_response()
        await asyncio.to_thread(run.engine.started.wait, 10)
        fake.fail_on_logged_errors = False  # the refusal is logged at ERROR: collected and checked below
        await fill_up(run.core.store)
        fake.take_logged_errors()  # filling it up logged the refusal already: start counting afresh
        run.core.store.write_failure = None
        caplog.clear()
        refused = [(await (await fake.slash("draw", {"prompt": f"p{n}", "size": "small"})).wait_response()).data
                   for n in range(2)]
        unhealthy = health()
        run.engine.gate.set()
        posted = await taken.wait_original(finished, timeout=60)  # drawn and posted all the same
        # Room again (an admin freed the disk): the next request goes through and health recovers.
        await run.core.store.connection.execute("PRAGMA max_page_count = 1000000")
        run.core.store.recovery_s = 0.0  # the bot waits a minute without failures before it says so
        again = await (await fake.slash("draw", {"prompt": "after", "size": "small"})).wait_original(finished, timeout=60)
        await run.settle()
        healthy = health()
        statuses = await run.core.store.query("SELECT status FROM generations WHERE prompt = ?",
                                              ("taken before the disk filled",))
        logged = fake.take_logged_errors()
        fake.fail_on_logged_errors = True
    for answer in refused:
        assert answer["flags"] & 64 and "my database won't save them" in answer["content"]
        assert "Try again" in answer["content"]
    assert unhealthy["database"] is False and healthy["database"] is True
    assert posted.attachments and again.attachments
    assert [tuple(r) for r in statuses] == [("posted",)]  # its writes were retried until they landed
    assert len(logged) == 1 and "the database refuses writes: database or disk is full" in logged[0].getMessage()
    assert not logged[0].exc_info  # once, with the reason, no traceback
