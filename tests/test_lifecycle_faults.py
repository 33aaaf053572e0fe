"""A job's status moves when the database refuses a write or two moves cross: a Delete while "posted" is
being retried, a late "failed", a cancel or a delete whose own write is locked out once. Each test
injects the failure itself (a trigger refusing one transition, a store write that raises once)."""

from __future__ import annotations

import sqlite3

import pytest
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.core import lifecycle
from zbot.core.jobs import Cancelled, DrawRequest

REFUSE_POSTED = """CREATE TEMP TRIGGER refuse_posted BEFORE UPDATE OF status ON generations
                   WHEN NEW.status = 'posted' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"""


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(lifecycle, "RETRY_FIRST_S", 0.02)


async def statuses(store) -> list[str]:
    return [row[0] for row in await store.query("SELECT status FROM generations ORDER BY id")]


def locked_once(store, monkeypatch, when: str) -> list[str]:
    """The store's next write whose parameters include `when` raises "database is locked", as another
    process holding the write lock past the busy timeout makes it; later writes go through."""
    write, failed = store.write, []

    async def flaky(sql, params=()):
        if when in tuple(params) and not failed:
            failed.append(sql)
            raise sqlite3.OperationalError("database is locked")
        return await write(sql, params)

    monkeypatch.setattr(store, "write", flaky)
    return failed


async def drawn_job(core) -> int:
    ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
    await ticket.result()
    await core.service.drain()
    return ticket.job_id


async def test_a_delete_while_the_posted_write_is_retried_ends_deleted(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        job_id = await drawn_job(core)
        await core.store.connection.execute(REFUSE_POSTED)
        await core.service.delivered(job_id, message_id=9)  # posted on Discord; the write is retried
        await core.lifecycle.deleted(job_id)  # its Delete button, clicked meanwhile
        await core.store.connection.execute("DROP TRIGGER refuse_posted")
        await core.service.drain()
        rerollable = await core.store.latest_for(1, 5)  # what /reroll would draw again
        kept = core.lifecycle.images.path(job_id).exists()
        # Before: the images went, the retried "posted" landed, and /reroll still found the image.
        assert await statuses(core.store) == ["deleted"] and rerollable is None and not kept


async def test_a_late_failed_after_posted_leaves_the_kept_images(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        job_id = await drawn_job(core)
        await core.service.delivered(job_id, message_id=9)  # kept: picks and variations start from it
        await core.lifecycle.failed(job_id, "a late report of a failed post")
        assert await statuses(core.store) == ["posted"]
        assert core.lifecycle.images.path(job_id).exists()


async def test_a_cancel_whose_write_is_locked_out_once_still_ends_cancelled(settings, monkeypatch):
    renderer = FakeRenderer()
    async with open_core(settings, [renderer]) as core:
        renderer.gate.clear()  # the first job holds the GPU; the second waits
        first = await core.service.submit(DrawRequest(user_id=1, prompt="first", channel_id=5))
        second = await core.service.submit(DrawRequest(user_id=1, prompt="second", channel_id=5))
        failed = locked_once(core.store, monkeypatch, "cancelled")
        assert core.service.cancel(second.job_id)
        with pytest.raises(Cancelled):
            await second.result()
        renderer.gate.set()
        await first.result()
        await core.service.drain()
        assert failed and await statuses(core.store) == ["drawn", "cancelled"]
    # Not pending any more: the next start doesn't draw it.
    async with open_core(settings, [FakeRenderer()]) as again:
        adopted = await again.lifecycle.adopt_orphans()
    assert [job.id for job in adopted] == [first.job_id]  # drawn, not posted: posted at the next start


async def test_a_delete_whose_write_is_locked_out_once_still_ends_deleted(settings, monkeypatch):
    async with open_core(settings, [FakeRenderer()]) as core:
        job_id = await drawn_job(core)
        await core.service.delivered(job_id, message_id=9)
        failed = locked_once(core.store, monkeypatch, "deleted")
        await core.lifecycle.deleted(job_id)  # the message is gone on Discord already
        await core.service.drain()
        assert failed and await statuses(core.store) == ["deleted"]
        assert not core.lifecycle.images.path(job_id).exists()
