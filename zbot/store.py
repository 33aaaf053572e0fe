"""SQLite through aiosqlite: migrations, the generations table, usage queries.

One connection, WAL mode. Writes go through `transaction()`, which holds an asyncio lock (the
connection is shared by every coroutine, so without it one coroutine's statements could land inside
another's transaction) and BEGIN IMMEDIATE (so a second process on the same file waits its turn).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiosqlite

from .jobs import Generation, Status

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_RE = re.compile(r"^(\d+)_[\w-]+\.sql$")
_COLUMNS = [f.name for f in fields(Generation) if f.name != "extra"]
UNFINISHED = (Status.QUEUED.value, Status.RUNNING.value)


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
        self._lock = None  # created lazily: an asyncio.Lock must belong to the running loop
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def insert(self, conn: aiosqlite.Connection, **values: Any) -> int:
        """Insert a generation row inside an open transaction; returns its id."""
        values.setdefault("created_at", time.time())
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cursor = await conn.execute(f"INSERT INTO generations ({names}) VALUES ({marks})", tuple(values.values()))
        return cursor.lastrowid

    async def record(self, **values: Any) -> int:
        async with self.transaction() as conn:
            return await self.insert(conn, **values)

    async def update(self, generation_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        async with self.transaction() as conn:
            await conn.execute(f"UPDATE generations SET {assignments} WHERE id = ?", (*values.values(), generation_id))

    async def mark_running(self, generation_id: int, at: float) -> None:
        await self.update(generation_id, status=Status.RUNNING.value, started_at=at)

    async def mark_done(self, generation_id: int, at: float, render_s: float) -> None:
        await self.update(generation_id, status=Status.DONE.value, finished_at=at, render_s=render_s)

    async def mark_failed(self, generation_id: int, at: float, error: str) -> None:
        await self.update(generation_id, status=Status.FAILED.value, finished_at=at, error=error)

    async def requeue_running(self) -> int:
        """After a crash, rows left 'running' were interrupted: they go back to the queue."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE generations SET status = 'queued', started_at = NULL WHERE status = 'running'")
            return cursor.rowcount

    # -- reads used by the limit check (inside its transaction) --------------------------------

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

    async def pending_for(self, user_id: int) -> list[Generation]:
        return await self._generations("WHERE user_id = ? AND status IN ('queued', 'running') ORDER BY id",
                                       (user_id,))

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def _generations(self, where: str, params: Iterable[Any] = ()) -> list[Generation]:
        rows = await self.query(f"SELECT {', '.join(_COLUMNS)} FROM generations {where}", params)
        return [Generation(**{**dict(row), "status": Status(row["status"])}) for row in rows]
