"""A job's life in the core: one owner of its state, its image kept until it is posted, failed writes
retried, and unfinished jobs adopted only from processes that are gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.core.drawn import DrawnImages, drawn_dir
from zbot.core.instance import Instance
from zbot.core.jobs import DrawRequest
from zbot.core.lifecycle import Lifecycle
from zbot.core.store import Store, migration_files

# A database-level failure for one transition: what "disk full" or "locked" does to that write.
REFUSE_DRAWN = """CREATE TEMP TRIGGER refuse_drawn BEFORE UPDATE OF status ON generations
                  WHEN NEW.status = 'drawn' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"""


async def statuses(store: Store) -> list[str]:
    return [row[0] for row in await store.query("SELECT status FROM generations ORDER BY id")]


async def until(condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_a_discord_job_goes_queued_running_drawn_posted_and_its_png_is_kept_until_it_expires(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
        result = await ticket.result()
        await core.service.drain()
        kept = core.lifecycle.images.path(ticket.job_id)
        assert await statuses(core.store) == ["drawn"] and kept.read_bytes() == result.png
        assert await core.lifecycle.image(ticket.job_id) == result.png

        await core.service.delivered(ticket.job_id, message_id=777)
        row = await core.store.get(ticket.job_id)
        # Posted, it stays kept (variations and upscales start from it) until ZBOT_KEEP_IMAGES_DAYS pass.
        assert (row.status, row.message_id, row.owner) == ("posted", 777, None) and kept.exists()
        # A late or repeated transition can't move a job backwards.
        await core.lifecycle.drawn(result, keep=True)
        assert await statuses(core.store) == ["posted"]
        await core.lifecycle.adopt_orphans()  # sweeps the kept images: this one is young
        assert kept.exists()
        core.lifecycle.clock = lambda: time.time() + settings.keep_images_days * 86400 + 60
        await core.lifecycle.adopt_orphans()
        assert not kept.exists() and await core.lifecycle.image(ticket.job_id) is None


async def test_a_deleted_image_is_not_kept(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
        await ticket.result()
        await core.service.drain()
        await core.service.delivered(ticket.job_id, message_id=777)
        assert await core.lifecycle.deleted(ticket.job_id) and await statuses(core.store) == ["deleted"]
        assert not core.lifecycle.images.path(ticket.job_id).exists()


async def test_http_jobs_keep_their_png_and_cli_ones_none(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        http = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", source="http"))
        cli = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", source="cli"))
        await http.result(), await cli.result()
        await core.service.drain()
        assert await statuses(core.store) == ["drawn", "drawn"]
        assert core.lifecycle.images.path(http.job_id).exists()  # an HTTP client may ask for a variation
        assert not core.lifecycle.images.path(cli.job_id).exists()


async def test_a_failed_database_write_after_the_render_loses_nothing(settings, caplog):
    async with open_core(settings, [FakeRenderer()]) as core:
        await core.store.connection.execute(REFUSE_DRAWN)
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
        result = await asyncio.wait_for(ticket.result(), 10)  # the image still comes out
        assert result.png.startswith(b"\x89PNG")
        assert core.lifecycle.images.path(ticket.job_id).read_bytes() == result.png
        assert await statuses(core.store) == ["running"]
        assert any("could not record job 1 drawn" in r.getMessage() for r in caplog.records)

        # The disk has room again: the write retried in the background lands.
        await core.store.connection.execute("DROP TRIGGER refuse_drawn")
        await until(lambda: _is(core.store, ["drawn"]))


async def _is(store: Store, expected: list[str]) -> bool:
    return await statuses(store) == expected


async def test_a_post_recorded_while_the_drawn_write_is_failing_stays_posted(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        await core.store.connection.execute(REFUSE_DRAWN)
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
        await ticket.result()
        await core.service.delivered(ticket.job_id, message_id=9)
        await core.store.connection.execute("DROP TRIGGER refuse_drawn")
        await core.service.drain()  # the retried "drawn" lands after "posted": it changes nothing
        assert await statuses(core.store) == ["posted"]


# -- owners: which process holds a job --------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from zbot.core.instance import Instance
    instance = Instance(Path(sys.argv[1]))
    print(instance.id, flush=True)
    time.sleep(120)
""")


def start_holder(database) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(database)], stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def test_an_instance_is_alive_while_its_process_lives_and_gone_after_kill_9(tmp_path):
    database = tmp_path / "zbot.sqlite3"
    process, holder = start_holder(database)
    me = Instance(database)
    try:
        assert me.alive(holder) and me.alive(me.id)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert not me.alive(holder)  # the system dropped its lock with the process
        assert not (me.folder / f"{holder}.lock").exists()
        assert not me.alive(None) and not me.alive("../../etc/passwd")
    finally:
        me.close()
        process.kill()


async def test_only_the_jobs_of_dead_processes_are_adopted_each_once(tmp_path):
    database = tmp_path / "zbot.sqlite3"
    store = await Store.open(database)
    images = DrawnImages(drawn_dir(database))
    process, live = start_holder(database)
    try:
        gone = Instance(database)
        gone_id = gone.id
        gone.close()  # stopped (or crashed): its lock is free
        rows = [("queued", live), ("running", live), ("queued", gone_id), ("running", gone_id),
                ("drawn", gone_id), ("posted", None), ("queued", None)]
        for status, owner in rows:
            # The posted one was made long ago: its image is past ZBOT_KEEP_IMAGES_DAYS.
            await store.record(user_id=1, prompt="p", status=status, owner=owner, started_at=1.0,
                               created_at=1.0 if status == "posted" else time.time())
        images.save(5, b"png of job 5")
        images.save(6, b"png of job 6, posted long ago: stale")

        first, second = Instance(database), Instance(database)
        adopted, again = await asyncio.gather(Lifecycle(store, images, first).adopt_orphans(),
                                              Lifecycle(store, images, second).adopt_orphans())
        taken = sorted([(g.id, g.status, g.started_at) for g in adopted + again])
        assert taken == [(3, "queued", 1.0), (4, "queued", None), (5, "drawn", 1.0), (7, "queued", 1.0)]
        owners = {row[0]: row[1] for row in await store.query("SELECT id, owner FROM generations")}
        assert owners[1] == owners[2] == live  # a live process keeps its jobs, running ones included
        assert {owners[i] for i in (3, 4, 5, 7)} <= {first.id, second.id}
        assert images.job_ids() == [5]  # the old posted job's PNG was swept
        first.close()
        second.close()
    finally:
        process.kill()
        process.wait()
        await store.close()


# -- the schema ------------------------------------------------------------------------------------

async def test_processes_opening_a_new_database_together_migrate_it_once(tmp_path):
    path = tmp_path / "new.sqlite3"
    stores = await asyncio.gather(*(Store.open(path) for _ in range(4)))
    try:
        versions = {await store.schema_version() for store in stores}
        tables = await stores[0].query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    finally:
        for store in stores:
            await store.close()
    assert versions == {len(migration_files())} and [t[0] for t in tables] == ["bans", "bans_audit", "bot_state", "generations",
                                                                              "refusals", "reports", "server_settings",
                                                                              "settings_audit"]


async def test_migration_3_splits_done_into_drawn_and_posted(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = await Store.open(path, migrate_to=2)
    for source, message_id in [("discord", 11), ("discord", None), ("http", None), ("cli", None)]:
        await old.record(user_id=1, prompt="p", status="done", source=source, message_id=message_id,
                         channel_id=5 if source == "discord" else None)
    await old.close()
    store = await Store.open(path)
    try:
        assert await statuses(store) == ["posted", "drawn", "posted", "posted"]
        with pytest.raises(sqlite3.IntegrityError):
            await store.record(user_id=1, prompt="p", status="done")
    finally:
        await store.close()


async def test_the_schema_accepts_every_status_of_the_enum_and_nothing_else(store):
    from zbot.core.jobs import Status

    for status in Status:
        await store.record(user_id=1, prompt="p", status=status.value)
    with pytest.raises(sqlite3.IntegrityError):
        await store.record(user_id=1, prompt="p", status="done")
    assert sorted(await statuses(store)) == sorted(s.value for s in Status)


def test_a_kept_image_cut_short_counts_as_not_kept(tmp_path):
    import io

    from PIL import Image

    images = DrawnImages(tmp_path / "drawn")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    whole = buffer.getvalue()
    images.save(1, whole)
    images.save(2, whole[: len(whole) // 2])  # as a power cut can leave a file never synced
    assert images.load(1) == whole and images.load(2) is None and images.load(3) is None
