"""A member's own records: their history (newest first, a page at a time) and their right to have it
forgotten (Discord's Developer Policy asks apps to delete a user's data on request).

A forget blanks what a member said and made (prompts, seeds, links to their messages, their reports'
notes, the last refused prompt of each hour) and removes their kept images and uploaded pictures, in one server or everywhere.
It keeps what the rate limits count, for their longest window only: a row's time, cost and status, with no
content, so that forgetting can't be used to reset a limit; older rows go altogether unless another row
names them. Deleted text must not stay readable in the file: SQLite's secure_delete zeroes freed space,
and a TRUNCATE checkpoint moves the write-ahead log's old page images out of the -wal file.
Plain values in and out: the Discord side deletes the messages it is handed back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from zbot.core.drawn import DrawnImages
from zbot.core.jobs import IMAGES, UNDELIVERED, Status, sql_set
from zbot.core.store import Store

log = logging.getLogger(__name__)

PAGE_SIZE = 10
EVERYWHERE: Any = object()  # forget's guild_id: every server, and what was drawn outside one
FORGOTTEN = ""  # a forgotten row's prompt: no request has an empty one (validation refuses it)
_SHOWN = sql_set(IMAGES + (Status.BLOCKED,))  # what became an image, posted or not
_UNDELIVERED = sql_set(UNDELIVERED)
CHECKPOINT_TRIES = 20


@dataclass(frozen=True)
class HistoryEntry:
    """One image (or grid) a member asked for, as /history shows it."""

    job_id: int
    prompt: str
    seed: int | None
    size: str | None
    width: int | None
    height: int | None
    count: int
    operation: str
    style: str | None  # where styles exist (their column), else None
    status: Status
    created_at: float
    channel_id: int | None
    message_id: int | None

    @property
    def posted(self) -> bool:
        """On show in its channel (not deleted, not withheld by the safety check, not still on its way)."""
        return self.status == Status.POSTED and self.message_id is not None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    page: int  # from 0
    pages: int  # at least 1, even when there is nothing
    total: int


@dataclass(frozen=True)
class Forgotten:
    """What a forget did: rows blanked or removed, kept images removed, and the messages zbot posted for
    the member, for the front end to delete when that was asked for ((channel_id, message_id) pairs)."""

    images: int
    files: int
    messages: list[tuple[int, int]]


def longest_window_s(*settings: Any) -> int:
    """The longest rate window that may count a member's images: the environment's, a server's, their
    role tiers' and the owner's ceiling for servers (which bounds every server's own windows)."""
    windows = [w for s in settings for w in (*s.rate_limits, *s.max_server_rate_limits,
                                             *(w for tier in s.role_rate_limits.values() for w in tier))]
    return max((w.seconds for w in windows), default=0)


def _place(guild_id: Any) -> tuple[str, list[Any]]:
    return ("", []) if guild_id is EVERYWHERE else (" AND guild_id IS ?", [guild_id])


async def history(store: Store, user_id: int, guild_id: int | None, page: int = 0,
                  per_page: int = PAGE_SIZE) -> HistoryPage:
    """A member's images in a server, newest first, page `page` (clamped to the pages there are)."""
    where = f"user_id = ? AND guild_id IS ? AND status IN {_SHOWN} AND prompt != ?"
    params = [user_id, guild_id, FORGOTTEN]
    total = await store.scalar(store.connection, f"SELECT count(*) FROM generations WHERE {where}", params)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 0), pages - 1)
    rows = await store.query(f"SELECT * FROM generations WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                             [*params, per_page, page * per_page])
    return HistoryPage([_entry(row) for row in rows], page, pages, total)


def _entry(row) -> HistoryEntry:
    columns = row.keys()  # styles' column, where that migration ran
    return HistoryEntry(row["id"], row["prompt"], row["seed"], row["size"], row["width"], row["height"],
                        row["count"], row["operation"], row["style"] if "style" in columns else None,
                        Status(row["status"]), row["created_at"], row["channel_id"], row["message_id"])


async def forget(store: Store, images: DrawnImages, user_id: int, guild_id: Any, *, now: float,
                 keep_s: float, delete_messages: bool = False) -> Forgotten:
    """Forget what zbot keeps about `user_id` in a server (EVERYWHERE: in all of them). Rows younger than
    `keep_s` (the longest rate window) stay as counts without content; requests still on their way
    (queued, drawing, about to be posted) are left to finish. Idempotent: run again after a failure."""
    place, where = _place(guild_id)
    mine = f"user_id = ?{place} AND status NOT IN {_UNDELIVERED}"
    rows = await store.query(f"SELECT id, status, channel_id, message_id FROM generations WHERE {mine}",
                             [user_id, *where])
    messages = [(row["channel_id"], row["message_id"]) for row in rows
                if delete_messages and row["message_id"] is not None and row["channel_id"] is not None
                and row["status"] == Status.POSTED.value]
    uploads = await store.column(store.connection, f"SELECT DISTINCT upload FROM generations WHERE {mine} "
                                 "AND upload IS NOT NULL", [user_id, *where])
    # Zeroes what later statements free (on this connection; it stays on, as prompts are what the file holds).
    await store.connection.execute("PRAGMA secure_delete=ON")
    await store.write(f"UPDATE generations SET prompt = ?, seed = NULL, error = NULL, channel_id = NULL, "
                      f"interaction_id = NULL, message_id = NULL, upload = NULL WHERE {mine}", [FORGOTTEN, user_id, *where])
    # Older than every window: nothing counts them. Rows another row or a report names stay, blank.
    await store.write(f"DELETE FROM generations WHERE {mine} AND created_at < ? "
                      "AND id NOT IN (SELECT parent_id FROM generations WHERE parent_id IS NOT NULL) "
                      "AND id NOT IN (SELECT source_id FROM generations WHERE source_id IS NOT NULL) "
                      "AND id NOT IN (SELECT generation_id FROM reports)", [user_id, *where, now - keep_s])
    await store.write(f"UPDATE reports SET note = '' WHERE reporter_id = ?{place}", [user_id, *where])
    refusals_place = "" if guild_id is EVERYWHERE else " AND guild_id = ?"
    await store.write(f"UPDATE refusals SET sample = '', error = '' WHERE user_id = ?{refusals_place}",
                      [user_id] + ([] if guild_id is EVERYWHERE else [guild_id or 0]))
    files = 0
    for row in rows:
        if await asyncio.to_thread(_remove, images, row["id"]):
            files += 1
    for digest in uploads:  # a picture kept once by its hash: kept while someone else's row draws from it
        if not await store.scalar(store.connection, "SELECT 1 FROM generations WHERE upload = ? LIMIT 1", [digest]):
            await asyncio.to_thread(images.remove_upload, digest)
            files += 1
    await checkpoint(store)
    where_said = "every server" if guild_id is EVERYWHERE else f"server {guild_id}"
    # The audit line: that it happened, with no content.
    log.info("forgot user %s in %s: %d images, %d kept files, %d messages to delete", user_id, where_said,
             len(rows), files, len(messages), extra=dict(user_id=user_id, outcome="forgotten"))
    return Forgotten(len(rows), files, messages)


def _remove(images: DrawnImages, job_id: int) -> bool:
    had = images.path(job_id).exists()
    images.remove(job_id)
    return had


async def checkpoint(store: Store) -> None:
    """Copy the write-ahead log into the database and empty it (TRUNCATE), so that the page images it
    held (forgotten text among them) leave the -wal file. A reader in another process can hold it back
    for a moment: try again briefly, then leave it to SQLite's next automatic checkpoint."""
    for attempt in range(CHECKPOINT_TRIES):
        async with store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            busy, _, _ = await cursor.fetchone()
        if not busy:
            return
        await asyncio.sleep(0.05 * (attempt + 1))
    log.warning("the write-ahead log could not be emptied after a forget (a reader held it); SQLite's next "
                "checkpoint moves the forgotten pages out of it")
