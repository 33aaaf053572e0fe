"""Backups while the bot draws, pruning old history, and the command-line front of both."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from support.renderers import FakeRenderer
from test_cli import zbot

from zbot.app import open_core
from zbot.config import parse_windows
from zbot.core.jobs import BadInput, DrawRequest
from zbot.core.maintenance import backup, parse_span, prune
from zbot.core.store import Store


async def test_a_backup_taken_while_jobs_are_drawn_and_recorded_is_whole(settings, tmp_path):
    settings = settings.model_copy(update={"rate_limits": parse_windows("1000/minute"), "queue_size": 1000,
                                           "max_pending_per_user": 1000})
    async with open_core(settings, [FakeRenderer(delay=0.01)]) as core:
        tickets = [await core.service.submit(DrawRequest(user_id=n % 7, prompt=f"p{n}", channel_id=5))
                   for n in range(40)]
        copies = []
        for n in range(3):  # while the jobs are drawn and their rows written
            copies.append(await asyncio.to_thread(backup, settings.database, tmp_path / f"copy{n}.sqlite3"))
            await asyncio.sleep(0.05)
        for ticket in tickets:
            await ticket.result()
        await core.service.drain()
        final = await asyncio.to_thread(backup, settings.database, tmp_path / "final.sqlite3")
    for copy in [*copies, final]:
        db = sqlite3.connect(copy.path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == copy.generations == 40
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 8  # the schema came along
        db.close()
    statuses = sqlite3.connect(final.path).execute("SELECT DISTINCT status FROM generations").fetchall()
    assert statuses == [("drawn",)]
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(BadInput, match="another file"):
        backup(settings.database, settings.database)


async def test_prune_removes_old_finished_rows_and_keeps_lineage_and_what_limits_count(tmp_path):
    store = await Store.open(tmp_path / "db.sqlite3")
    now = time.time()
    old, young = now - 100 * 86400, now - 86400
    common = dict(user_id=1, prompt="p", seed=1, width=64, height=64, steps=8)
    grand = await store.record(**common, status="posted", created_at=old)
    parent = await store.record(**common, status="posted", created_at=old, parent_id=grand)  # old child, old parent
    source = await store.record(**common, status="posted", created_at=old)
    await store.record(**common, status="posted", created_at=young, source_id=source, strength=0.7)  # young child
    failed = await store.record(**common, status="failed", created_at=old)
    waiting = await store.record(**common, status="queued", created_at=old)  # still owed an image
    await store.add_report(failed, 9, None, "", old)
    before = await store.scalar(store.connection, "SELECT count(*) FROM generations")
    dry = await prune(store, older_than_s=90 * 86400, now=now, longest_window_s=86400, dry_run=True)
    assert await store.scalar(store.connection, "SELECT count(*) FROM generations") == before  # nothing gone
    done = await prune(store, older_than_s=90 * 86400, now=now, longest_window_s=86400)
    left = await store.column(store.connection, "SELECT id FROM generations ORDER BY id")
    with pytest.raises(BadInput, match="still count against a rate limit"):
        await prune(store, older_than_s=3600, now=now, longest_window_s=86400)
    await store.close()
    assert (done.generations, done.reports, done.kept_for_lineage) == (3, 1, 1)
    assert dry.kept_for_lineage >= 1 and dry.reports == 1
    assert sorted(left) == sorted([source, 4, waiting]) and parent not in left and grand not in left


def test_spans_read_as_people_write_them():
    assert [parse_span(s) for s in ("90d", "12w", "48h", "30")] == [90 * 86400, 84 * 86400, 48 * 3600, 30 * 86400]
    with pytest.raises(BadInput, match="not a span"):
        parse_span("a while")


def test_backup_and_prune_on_the_command_line(tmp_path: Path):
    env = dict(ZBOT_SAFETY="off")
    assert "no server has changed" in zbot("settings", cwd=tmp_path, **env).stdout  # makes the database
    done = zbot("backup", "copy.sqlite3", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout and "integrity checked" in done.stdout and (tmp_path / "copy.sqlite3").exists()
    pruned = zbot("prune", "--older-than", "90d", cwd=tmp_path, **env)
    assert pruned.returncode == 0 and "removed 0 generations" in pruned.stdout
    refused = zbot("prune", "--older-than", "12h", cwd=tmp_path, **env)
    assert refused.returncode == 1 and "still count against a rate limit" in refused.stderr
