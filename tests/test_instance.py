"""Which process holds a job, when processes reach the database by different paths or as different users."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from test_lifecycle import start_holder

from zbot.core.drawn import DrawnImages, drawn_dir
from zbot.core.instance import Instance, instances_dir
from zbot.core.lifecycle import Lifecycle
from zbot.core.store import Store


async def test_a_process_reaching_the_database_through_a_symlink_and_a_relative_path_leaves_a_live_ones_jobs(
        tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "zbot.sqlite3"
    (tmp_path / "zbot.sqlite3").symlink_to(real)  # e.g. a compose file's path beside a cron job's
    store = await Store.open(real)
    process, holder = start_holder(real)  # the bot, started with the real path
    try:
        job = await store.record(user_id=1, prompt="p", status="drawn", owner=holder, channel_id=5)
        DrawnImages(drawn_dir(real)).save(job, b"the bot's drawn image")
        monkeypatch.chdir(tmp_path)
        other = Path("zbot.sqlite3")  # the same file, through the symlink, relative
        second = Instance(other)
        lifecycle = Lifecycle(store, DrawnImages(drawn_dir(other)), second)
        try:
            assert await lifecycle.adopt_orphans() == []  # it would post the image a second time
            row = await store.get(job)
            assert (row.status, row.owner) == ("drawn", holder)
            assert second.alive(holder) and instances_dir(other) == instances_dir(real)
            assert lifecycle.images.path(job).read_bytes() == b"the bot's drawn image"

            os.kill(process.pid, signal.SIGKILL)  # and once it is gone, its job is taken over
            process.wait()
            assert [g.id for g in await lifecycle.adopt_orphans()] == [job]
        finally:
            second.close()
    finally:
        process.kill()
        process.wait()
        await store.close()


def test_a_lock_file_we_may_not_open_is_someone_alive_said_once(tmp_path, monkeypatch, caplog):
    database = tmp_path / "zbot.sqlite3"
    rooted = Instance(database)  # as if `zbot batch` ran as root: its file 0600, not ours to open
    me = Instance(database)
    theirs = str(me.folder / f"{rooted.id}.lock")
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path) == theirs and os.path.exists(path):
            raise PermissionError(13, "Permission denied", theirs)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("zbot.core.instance.os.open", refusing_open)
    try:
        with caplog.at_level(logging.WARNING, logger="zbot.core.instance"):
            assert me.alive(rooted.id) and me.alive(rooted.id)
        assert [r.getMessage() for r in caplog.records].count(
            f"may not open {theirs} (another user's?); its jobs are left to it. Run every zbot on this database "
            "as the same user") == 1
        assert len(caplog.records) == 1
        rooted.close()
        assert not me.alive(rooted.id)  # its file gone with it: gone, whoever it was
    finally:
        me.close()
        rooted.close()
