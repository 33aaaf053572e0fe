"""SQLite through aiosqlite: migrations, the generations table, usage queries.

One connection, WAL mode, autocommit. Every write is a single statement, so it is atomic without a
multi-statement transaction that other coroutines sharing the connection could interleave with; a
second process on the same file waits on SQLite's lock (busy timeout) or retries (see `write`).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiosqlite

from .jobs import Generation, Status

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_RE = re.compile(r"^(\d+)_[\w-]+\.sql$")
_COLUMNS = [f.name for f in fields(Generation)]
BUSY_RETRIES = 50


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """The numbered .sql files, in order; numbers must run 1, 2, 3 ... without gaps."""
    found = sorted((int(m[1]), p) for p in directory.glob("*.sql") if (m := _MIGRATION_RE.match(p.name)))
    for expected, (number, path) in enumerate(found, start=1):
        if number != expected:
            raise RuntimeError(f"migration {path.name} is out of sequence (expected number {expected})")
    return found


class Store:
    def __init__(self, conn: aiosqlite.Connection):
        self._conn = conn
        conn.row_factory = aiosqlite.Row

    @classmethod
    async def open(cls, path: str | Path, *, migrate_to: int | None = None,
                   migrations: Path = MIGRATIONS_DIR) -> Store:
        """Open (creating if needed) and bring the schema up to date."""
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.execute("PRAGMA foreign_keys=ON")
        store = cls(conn)
        await store.migrate(migrate_to, migrations)
        return store

    @property
    def connection(self) -> aiosqlite.Connection:
        """For reads outside a transaction (the statements of a transaction hold the lock)."""
        return self._conn

    async def close(self) -> None:
        await self._conn.close()

    # -- schema ------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        async with self._conn.execute("PRAGMA user_version") as cursor:
            return (await cursor.fetchone())[0]

    async def migrate(self, target: int | None = None, migrations: Path = MIGRATIONS_DIR) -> int:
        """Apply each pending migration in its own transaction, recording the version in the file."""
        files = migration_files(migrations)
        target = len(files) if target is None else target
        current = await self.schema_version()
        if current > len(files):
            raise RuntimeError(f"database schema v{current} is newer than this zbot (knows v{len(files)})")
        for number, path in files[current:target]:
            script = path.read_text(encoding="utf-8")
            try:
                await self._conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
            except Exception:
                if self._conn.in_transaction:
                    await self._conn.execute("ROLLBACK")
                raise
        return await self.schema_version()

    # -- writes --------------------------------------------------------------------------------
    # Each write is one statement, atomic on its own in autocommit mode, and costs one hop to the
    # connection's thread. Under a burst of requests that matters: a multi-statement transaction
    # holds every other writer back for several hops of the event loop.

    async def write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        """Run one writing statement, retrying while another process holds the write lock."""
        params = tuple(params)
        for attempt in range(BUSY_RETRIES):
            try:
                return await self._conn.execute(sql, params)
            except sqlite3.OperationalError as error:
                # Another connection wrote since this statement read (SQLITE_BUSY_SNAPSHOT), which the
                # busy timeout does not cover: run the statement again on a fresh snapshot.
                if attempt == BUSY_RETRIES - 1 or not _is_busy(error):
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    async def insert_where(self, values: dict[str, Any], condition: str, params: Iterable[Any] = ()) -> int | None:
        """Insert a generation row only if `condition` (SQL) holds, in one atomic statement; returns its
        id, or None when the condition did not hold."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cursor = await self.write(f"INSERT INTO generations ({names}) SELECT {marks} WHERE {condition}",
                                  (*values.values(), *params))
        return cursor.lastrowid if cursor.rowcount == 1 else None

    async def record(self, **values: Any) -> int:
        """Insert a generation row; returns its id."""
        values.setdefault("created_at", time.time())
        row_id = await self.insert_where(values, "1")
        assert row_id is not None
        return row_id

    async def update(self, generation_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self.write(f"UPDATE generations SET {assignments} WHERE id = ?", (*values.values(), generation_id))

    async def mark_running(self, generation_id: int, at: float) -> None:
        await self.update(generation_id, status=Status.RUNNING.value, started_at=at)

    async def mark_done(self, generation_id: int, at: float, render_s: float) -> None:
        await self.update(generation_id, status=Status.DONE.value, finished_at=at, render_s=render_s)

    async def mark_failed(self, generation_id: int, at: float, error: str) -> None:
        await self.update(generation_id, status=Status.FAILED.value, finished_at=at, error=error)

    async def requeue_running(self) -> int:
        """After a crash, rows left 'running' were interrupted: they go back to the queue."""
        cursor = await self.write("UPDATE generations SET status = 'queued', started_at = NULL "
                                  "WHERE status = 'running'")
        return cursor.rowcount

    # -- small read helpers ----------------------------------------------------------------------

    @staticmethod
    async def scalar(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> Any:
        async with conn.execute(sql, tuple(params)) as cursor:
            row = await cursor.fetchone()
            return row[0] if row else None

    @staticmethod
    async def column(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with conn.execute(sql, tuple(params)) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, generation_id: int) -> Generation | None:
        rows = await self._generations("WHERE id = ?", (generation_id,))
        return rows[0] if rows else None

    async def by_message(self, message_id: int) -> Generation | None:
        rows = await self._generations("WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,))
        return rows[0] if rows else None

    async def latest_for(self, user_id: int, channel_id: int | None) -> Generation | None:
        """The user's latest finished image (in this channel when one is given)."""
        where = "WHERE user_id = ? AND status = 'done'"
        params: list[Any] = [user_id]
        if channel_id is not None:
            where += " AND channel_id = ?"
            params.append(channel_id)
        rows = await self._generations(where + " ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    async def unfinished(self) -> list[Generation]:
        """Queued and running rows, oldest first."""
        return await self._generations("WHERE status IN ('queued', 'running') ORDER BY id")

    async def unposted(self, source: str = "discord") -> list[Generation]:
        """Images drawn but never posted (the process died in between), oldest first."""
        return await self._generations("WHERE status = 'done' AND message_id IS NULL AND source = ? "
                                       "AND channel_id IS NOT NULL ORDER BY id", (source,))

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def _generations(self, where: str, params: Iterable[Any] = ()) -> list[Generation]:
        rows = await self.query(f"SELECT {', '.join(_COLUMNS)} FROM generations {where}", params)
        return [Generation(**{**dict(row), "status": Status(row["status"])}) for row in rows]
