import sqlite3
from dataclasses import fields, make_dataclass
from pathlib import Path

import pytest

from zbot.config import parse_windows
from zbot.core.jobs import Generation, NewJob, Status
from zbot.core.limits import Policy, admit
from zbot.core.store import MIGRATIONS_DIR, Store, migration_files


async def test_migrates_an_empty_database_to_the_latest_version(tmp_path: Path):
    store = await Store.open(tmp_path / "new.sqlite3")
    try:
        assert await store.schema_version() == len(migration_files()) >= 2
        rows = await store.query("PRAGMA journal_mode")
        assert rows[0][0] == "wal"
        columns = {row[1] for row in await store.query("PRAGMA table_info(generations)")}
        assert {"user_id", "guild_id", "channel_id", "prompt", "seed", "width", "height", "steps", "status",
                "error", "created_at", "started_at", "finished_at", "render_s", "message_id"} <= columns
    finally:
        await store.close()


@pytest.mark.parametrize("start", range(1, len(migration_files())))
async def test_migrates_from_each_earlier_version_keeping_rows(tmp_path: Path, start: int):
    path = tmp_path / "old.sqlite3"
    old = await Store.open(path, migrate_to=start)
    assert await old.schema_version() == start
    try:
        status = "done" if start < 3 else "posted"  # migration 3 renamed the finished states
        row_id = await old.record(user_id=7, prompt="a fox", status=status, seed=1, width=64, height=64, steps=8)
    finally:
        await old.close()

    store = await Store.open(path)
    try:
        assert await store.schema_version() == len(migration_files())
        kept = await store.get(row_id)
        assert kept is not None and kept.prompt == "a fox" and kept.user_id == 7
        indexes = {row[0] for row in await store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "generations_user_created" in indexes
    finally:
        await store.close()


async def test_a_failing_migration_changes_nothing(tmp_path: Path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        (migrations / path.name).write_text(path.read_text())
    broken = len(migration_files()) + 1
    (migrations / f"{broken:04d}_broken.sql").write_text(
        "ALTER TABLE generations ADD COLUMN note TEXT;\nTHIS IS NOT SQL;\n")
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(tmp_path / "db.sqlite3", migrations=migrations)
    store = await Store.open(tmp_path / "db.sqlite3")  # the real migrations: stopped before the broken one
    try:
        assert await store.schema_version() == broken - 1
        columns = {row[1] for row in await store.query("PRAGMA table_info(generations)")}
        assert "note" not in columns
    finally:
        await store.close()


def test_migration_numbers_must_not_skip(tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="out of sequence"):
        migration_files(tmp_path)


async def test_a_failing_migration_leaves_no_connection_open(tmp_path: Path):
    import threading

    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_broken.sql").write_text("THIS IS NOT SQL;\n")
    before = set(threading.enumerate())
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(tmp_path / "db.sqlite3", migrations=migrations)
    # aiosqlite runs each connection on a thread of its own: a leaked connection is a thread left running.
    # A closed connection's thread ends just after close() returns (aiosqlite settles the future before it
    # breaks out of its loop), so give each new thread a moment to finish; a leaked one never does.
    started = [t for t in threading.enumerate() if t not in before]
    for thread in started:
        thread.join(timeout=5)
    assert [t for t in started if t.is_alive()] == []


async def test_a_database_from_a_newer_zbot_is_refused_in_one_sentence(tmp_path: Path):
    from zbot.core.store import SchemaError

    path = tmp_path / "future.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version = 99").connection.close()
    with pytest.raises(SchemaError, match=r"made by a newer zbot \(schema v99; this one knows v\d+\)"):
        await Store.open(path)


async def test_every_field_of_an_admitted_job_is_a_column_and_every_column_is_read_back(store: Store):
    columns = {row[1] for row in await store.query("PRAGMA table_info(generations)")}
    assert {f.name for f in fields(NewJob)} <= columns  # written by name at admission
    assert {f.name for f in fields(Generation)} == columns  # read back, none left behind


async def test_a_job_field_without_a_column_is_refused_by_name_not_dropped(store: Store):
    # What adding a /draw option to NewJob without its migration does: the insert names the field and
    # fails as a programming error, not as "the database refuses writes" (which the Service would turn
    # into a polite refusal and /healthz into an alert).
    Negative = make_dataclass("Negative", [("negative", str, "ink")], bases=(NewJob,), frozen=True)
    job = Negative(user_id=1, prompt="a fox", seed=1, size="square", width=64, height=64, steps=8)
    with pytest.raises(TypeError, match="Negative field.* negative have no column"):
        await store.insert_job(job, status=Status.QUEUED, created_at=1.0)
    with pytest.raises(TypeError, match="negative"):
        await admit(store, Policy(parse_windows("5/minute"), 10, 10), job, now=1.0)
    assert await store.query("SELECT * FROM generations") == []
    assert store.write_failure is None
    # Its NewJob part is inserted as usual.
    assert await store.insert_job(NewJob(**{f.name: getattr(job, f.name) for f in fields(NewJob)}),
                                  status=Status.QUEUED, created_at=1.0) == 1
