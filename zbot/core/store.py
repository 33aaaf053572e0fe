"""SQLite through aiosqlite: migrations, the generations table, usage queries.

One connection, WAL mode, autocommit. Every write is a single statement, so it is atomic without a
multi-statement transaction that other coroutines sharing the connection could interleave with; a
second process on the same file waits on SQLite's lock (busy timeout) or retries (see `write`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiosqlite

from zbot.core.jobs import MAX_ID, MIN_ID, Generation, NewJob, Status

log = logging.getLogger(__name__)



def _migrations_dir() -> Path:
    """The schema's numbered .sql files: `migrations/` at the top of a checkout (an editable install reads
    them there), `zbot/migrations/` inside a wheel (pyproject.toml maps the folder into the package)."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "migrations"
    return packaged if packaged.is_dir() else package.parent / "migrations"


MIGRATIONS_DIR = _migrations_dir()
_MIGRATION_RE = re.compile(r"^(\d+)_[\w-]+\.sql$")
_COLUMNS = [f.name for f in fields(Generation)]
BUSY_RETRIES = 50
BUSY_DEADLINE_S = 15.0  # a write locked out longer than this fails (each try waits busy_timeout first)
REFUSAL_SAMPLE_CHARS = 200  # of the last refused prompt, kept per user, reason and hour


class SchemaError(Exception):
    """The database can't be used by this zbot (made by a newer one); the message is one line."""


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


def statements(script: str) -> list[str]:
    """A script's statements one by one (executescript would commit the transaction around them)."""
    found, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                found.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") for part in buffer.strip().splitlines()):
        found.append(buffer.strip())  # a last statement without its semicolon: let SQLite say what is wrong
    return found


class Store:
    def __init__(self, conn: aiosqlite.Connection):
        self._conn = conn
        self.write_failure: str | None = None  # why writes fail, until they succeed for `recovery_s`
        self.recovery_s = 60.0
        self._failed_at = 0.0
        self._job_columns: frozenset[str] | None = None  # the generations table's, read at the first insert
        conn.row_factory = aiosqlite.Row

    @classmethod
    async def open(cls, path: str | Path, *, migrate_to: int | None = None,
                   migrations: Path = MIGRATIONS_DIR) -> Store:
        """Open (creating if needed) and bring the schema up to date; raises SchemaError for a database
        made by a newer zbot. The connection is closed again if anything here fails."""
        if sqlite3.sqlite_version_info < (3, 35):  # UPDATE ... RETURNING
            raise SchemaError(f"zbot needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}")
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await conn.execute("PRAGMA busy_timeout=10000")
            # Switching a new file to WAL needs it to itself, and SQLite answers "locked" at once (no busy
            # wait) while another process does the same: try again for a moment.
            for attempt in range(BUSY_RETRIES):
                try:
                    await conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as error:
                    if attempt == BUSY_RETRIES - 1 or not _is_busy(error):
                        raise
                    await asyncio.sleep(0.01 * (attempt + 1))
            await conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(conn)
            await store.migrate(migrate_to, migrations)
            await conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            await conn.close()
            raise
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
        """Apply each pending migration in its own transaction, recording the version in the file.

        The version is read inside the transaction (BEGIN IMMEDIATE holds the write lock), so two
        processes starting together on a new database apply each migration once between them. Foreign
        keys are off meanwhile, as SQLite's procedure for rebuilding a table asks."""
        files = migration_files(migrations)
        target = len(files) if target is None else target
        current = await self.schema_version()
        if current > len(files):
            raise SchemaError(f"the database was made by a newer zbot (schema v{current}; this one knows "
                              f"v{len(files)}): upgrade zbot, or point ZBOT_DATABASE at another file")
        if current >= target:
            return current
        self._job_columns = None  # the columns may change
        await self._conn.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set it before
        try:
            for number, path in files[:target]:
                await self._apply(number, path)
        finally:
            await self._conn.execute("PRAGMA foreign_keys=ON")
        return await self.schema_version()

    async def _apply(self, number: int, path: Path) -> None:
        script = statements(path.read_text(encoding="utf-8"))
        await self.write("BEGIN IMMEDIATE")
        try:
            if await self.schema_version() >= number:  # applied already, perhaps by another process
                await self._conn.execute("ROLLBACK")
                return
            for statement in script:
                await self._conn.execute(statement)
            problems = await self.query("PRAGMA foreign_key_check")
            if problems:
                raise SchemaError(f"migration {path.name} left {len(problems)} broken references")
            await self._conn.execute(f"PRAGMA user_version={number}")
            await self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")
            raise

    # -- writes --------------------------------------------------------------------------------
    # Each write is one statement, atomic on its own in autocommit mode, and costs one hop to the
    # connection's thread. Under a burst of requests that matters: a multi-statement transaction
    # holds every other writer back for several hops of the event loop.

    async def write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        """Run one writing statement, retrying while another process holds the write lock. A write the
        database refuses (a full disk, a read-only file) is logged once, when writes start failing, and
        `write_failure` says why until one succeeds again (/healthz shows it)."""
        params = tuple(params)
        began = time.monotonic()
        for attempt in range(BUSY_RETRIES):
            try:
                cursor = await self._conn.execute(sql, params)
            except sqlite3.OperationalError as error:
                # Another connection wrote since this statement read (SQLITE_BUSY_SNAPSHOT), which the
                # busy timeout does not cover: run the statement again on a fresh snapshot. A lock held
                # past the busy timeout is the holder's problem: give up soon, don't wait minutes.
                if attempt == BUSY_RETRIES - 1 or not _is_busy(error) or time.monotonic() - began > BUSY_DEADLINE_S:
                    self._refused_write(error)
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
            except sqlite3.DatabaseError as error:
                self._refused_write(error)
                raise
            else:
                # A full database still takes some writes (an update in place) while refusing inserts: the
                # trouble is over once nothing failed for `recovery_s`.
                if self.write_failure is not None and time.monotonic() - self._failed_at > self.recovery_s:
                    log.info("the database takes writes again (they failed with: %s)", self.write_failure)
                    self.write_failure = None
                return cursor
        raise AssertionError("unreachable")

    def _refused_write(self, error: sqlite3.Error) -> None:
        self._failed_at = time.monotonic()
        if self.write_failure is None:
            log.error("the database refuses writes: %s (a full disk, a read-only file or folder?); requests "
                      "are refused until writes succeed again, jobs already taken are kept in memory", error)
        self.write_failure = str(error)

    async def insert_where(self, values: dict[str, Any], condition: str, params: Iterable[Any] = ()) -> int | None:
        """Insert a generation row only if `condition` (SQL) holds, in one atomic statement; returns its
        id, or None when the condition did not hold."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cursor = await self.write(f"INSERT INTO generations ({names}) SELECT {marks} WHERE {condition}",
                                  (*values.values(), *params))
        return cursor.lastrowid if cursor.rowcount == 1 else None

    async def insert_job(self, job: NewJob, *, status: Status, created_at: float, condition: str = "1",
                         params: Iterable[Any] = ()) -> int | None:
        """Insert an admitted job, each field of `job` into its column of the same name, if `condition`
        (SQL) holds, in one atomic statement; returns its id, or None when the condition did not hold.
        A field with no column is a TypeError here, before any SQL: never dropped, and not mistaken for
        the database refusing writes."""
        if self._job_columns is None:
            self._job_columns = frozenset(
                await self.column(self._conn, "SELECT name FROM pragma_table_info('generations')"))
        values = {f.name: getattr(job, f.name) for f in fields(job)}
        missing = sorted(set(values) - self._job_columns)
        if missing:
            raise TypeError(f"{type(job).__name__} field(s) {', '.join(missing)} have no column in the generations "
                            "table: add them in a migration (migrations/)")
        return await self.insert_where({**values, "status": status.value, "created_at": created_at}, condition, params)

    async def record(self, **values: Any) -> int:
        """Insert a generation row of any columns, as tests and imports make them; returns its id. Admissions
        go through insert_job."""
        values.setdefault("created_at", time.time())
        row_id = await self.insert_where(values, "1")
        assert row_id is not None
        return row_id

    async def count_refusal(self, *, user_id: int, guild_id: int | None, source: str, reason: str, prompt: str,
                            error: str, at: float) -> None:
        """Count a refused request in its user's row for this server, front end, reason and hour (table
        refusals), keeping the last prompt refused, cut short: refusals grow the file by one small row an
        hour at most, however many are sent."""
        await self.write(
            "INSERT INTO refusals (user_id, guild_id, source, reason, hour, count, last_at, sample, error) "
            "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (user_id, guild_id, source, reason, hour) DO UPDATE SET "
            "count = count + 1, last_at = max(last_at, excluded.last_at), sample = excluded.sample, "
            "error = excluded.error",
            (user_id, guild_id or 0, source, reason, int(at // 3600) * 3600, at,
             _storable(prompt[:REFUSAL_SAMPLE_CHARS]), _storable(error)))

    async def update(self, generation_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self.write(f"UPDATE generations SET {assignments} WHERE id = ?", (*values.values(), generation_id))

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
        if not MIN_ID <= generation_id <= MAX_ID:  # from a URL or a button: no such row (sqlite3 would raise)
            return None
        rows = await self.generations("WHERE id = ?", (generation_id,))
        return rows[0] if rows else None

    async def by_message(self, message_id: int) -> Generation | None:
        if not MIN_ID <= message_id <= MAX_ID:
            return None
        rows = await self.generations("WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,))
        return rows[0] if rows else None

    async def latest_for(self, user_id: int, channel_id: int | None) -> Generation | None:
        """The user's latest image still on show (in this channel when one is given)."""
        where = "WHERE user_id = ? AND status = ?"
        params: list[Any] = [user_id, Status.POSTED.value]
        if channel_id is not None:
            where += " AND channel_id = ?"
            params.append(channel_id)
        rows = await self.generations(where + " ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    # -- reports (the Report button) -------------------------------------------------------------

    async def add_report(self, generation_id: int, reporter_id: int, guild_id: int | None, note: str,
                         at: float) -> int | None:
        """The new report's id, or None if this person had reported this image already."""
        cursor = await self.write("INSERT OR IGNORE INTO reports (generation_id, reporter_id, guild_id, note, "
                                  "created_at) VALUES (?, ?, ?, ?, ?)", (generation_id, reporter_id, guild_id,
                                                                         _storable(note), at))
        return cursor.lastrowid if cursor.rowcount == 1 else None

    async def report(self, report_id: int) -> aiosqlite.Row | None:
        rows = await self.query("SELECT * FROM reports WHERE id = ?", (report_id,))
        return rows[0] if rows else None

    async def update_report(self, report_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self.write(f"UPDATE reports SET {assignments} WHERE id = ?", (*values.values(), report_id))

    async def state(self, key: str) -> str | None:
        """A small fact kept between runs (table bot_state)."""
        return await self.scalar(self._conn, "SELECT value FROM bot_state WHERE key = ?", (key,))

    async def set_state(self, key: str, value: str) -> None:
        await self.write("INSERT INTO bot_state (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def generations(self, where: str, params: Iterable[Any] = ()) -> list[Generation]:
        """Rows of the generations table: `where` is the SQL after FROM (WHERE ..., ORDER BY ...)."""
        rows = await self.query(f"SELECT {', '.join(_COLUMNS)} FROM generations {where}", params)
        return [Generation(**{**dict(row), "status": Status(row["status"])}) for row in rows]


def _storable(text: str) -> str:
    """Text SQLite can store: a lone surrogate (valid in JSON, not in UTF-8) written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
