"""The one owner of a job's state: every status change goes through here, and nowhere else.

    queued -> running -> drawn -> posted (-> deleted)
       \\--------\\---------\\--> failed        queued -> cancelled        drawn -> blocked

Each change is one UPDATE that names the states it may come from, so a late or repeated write can't
move a job backwards (a retried "drawn" after "posted" changes nothing). A drawn image's PNG is kept
beside the database (zbot.core.drawn) until the job is posted; a restart posts it from there.

The writes that follow a render must not lose the render: when the database refuses one (disk full,
locked for too long), the image goes on to its user all the same and the write is retried in the
background until it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from zbot.core.background import Background
from zbot.core.drawn import DrawnImages
from zbot.core.instance import Instance
from zbot.core.jobs import PENDING, UNDELIVERED, Generation, Result, Status, sql_set
from zbot.core.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Raw:
    """A value set by an SQL expression with one parameter, e.g. coalesce(finished_at, ?)."""

    sql: str
    param: object

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


class Lifecycle:
    def __init__(self, store: Store, images: DrawnImages, instance: Instance, *,
                 clock: Callable[[], float] = time.time, keep_s: float = 7 * 86400):
        self.store = store
        self.images = images
        self.instance = instance
        self.clock = clock
        self.keep_s = keep_s
        self._retries = Background("saving a job's state")

    @property
    def owner(self) -> str:
        """The id this process's jobs carry in their `owner` column."""
        return self.instance.id

    # -- transitions ---------------------------------------------------------------------------

    async def started(self, job_id: int, at: float) -> None:
        await self._persist(f"job {job_id} started", lambda: self._move(
            job_id, (Status.QUEUED,), Status.RUNNING, started_at=at))

    async def drawn(self, result: Result, *, keep: bool) -> None:
        """The render is done. With `keep`, its PNG is saved first, so that the job can be posted after
        a restart without drawing it again (the Discord front end; HTTP and CLI callers hold it)."""
        if keep:
            try:
                for index, picture in enumerate(result.pictures):
                    await asyncio.to_thread(self.images.save, result.job_id, picture.png, index)
            except OSError as error:  # the images are still in memory, on their way to their user
                log.warning("job %s: could not keep its images beside the database (%s); they are posted from "
                            "memory, and drawn again if the bot restarts first", result.job_id, error)
            await self.trim_images()
        finished_at = self.clock()
        # A grid's score is its most worrying image's.
        verdicts = [p.verdict for p in result.pictures if p.verdict is not None]
        worst = max(verdicts, key=lambda v: v.score) if verdicts else None
        await self._persist(f"job {result.job_id} drawn", lambda: self._move(
            result.job_id, PENDING, Status.DRAWN, finished_at=finished_at, render_s=result.render_s,
            safety_score=worst.score if worst else None, safety_checker=worst.checker if worst else None))

    async def picked(self, grid: Generation, index: int, *, user_id: int, guild_id: int | None,
                     channel_id: int | None, interaction_id: int | None, verdict=None) -> int:
        """Image `index` of a posted grid, to be posted alone: a job of its own, born drawn (its grid drew
        it; count 0 and cost 0: it counts nothing more), owned by this process until it is posted or failed.
        Returns its id. Not retried: the database refusing it refuses the pick (sqlite3.Error)."""
        return await self.store.record(
            source="discord", user_id=user_id, guild_id=guild_id, channel_id=channel_id, prompt=grid.prompt,
            seed=grid.seeds[index], size=grid.size, width=grid.width, height=grid.height, steps=grid.steps,
            status=Status.DRAWN.value, parent_id=grid.id, count=0, cost=0, operation="pick", style=grid.style,
            interaction_id=interaction_id, owner=self.owner, created_at=self.clock(),
            safety_score=verdict.score if verdict else None, safety_checker=verdict.checker if verdict else None)

    async def delivered(self, job_id: int, message_id: int | None = None, *, keep_images: bool = False) -> None:
        """Posted on Discord (as `message_id`), returned over HTTP or written by the CLI. The kept PNGs go,
        unless `keep_images` (picks, variations and upscales start from them; swept after `keep_s`)."""
        await self._persist(f"job {job_id} posted", lambda: self._finish(
            job_id, UNDELIVERED, Status.POSTED, message_id=message_id, owner=None, finished_at=Raw(
                "coalesce(finished_at, ?)", self.clock()), keep_images=keep_images))

    async def failed(self, job_id: int, reason: str) -> None:
        finished_at = self.clock()
        await self._persist(f"job {job_id} failed", lambda: self._finish(
            job_id, UNDELIVERED, Status.FAILED, finished_at=finished_at, error=reason, owner=None))

    async def requeue(self, job_id: int) -> bool:
        """A drawn job whose image was lost goes back to the queue, to be drawn again."""
        return await self._move(job_id, (Status.DRAWN,), Status.QUEUED, started_at=None)

    async def blocked(self, job_id: int) -> None:
        """Withheld: the safety check flagged the image where it may not be shown. Its PNG goes; it still
        counts against its requester's limits (zbot.core.jobs.COUNTED)."""
        await self._persist(f"job {job_id} blocked", lambda: self._finish(
            job_id, UNDELIVERED, Status.BLOCKED, owner=None, finished_at=Raw("coalesce(finished_at, ?)", self.clock())))

    async def cancelled(self, job_id: int) -> bool | None:
        """Take a job that has not started out of the queue's records; False if it had started, None
        while the write is being retried. Retried like the others: a job left `queued` would be drawn
        at the next start though its requester cancelled it."""
        finished_at = self.clock()
        return await self._persist(f"job {job_id} cancelled", lambda: self._move(
            job_id, (Status.QUEUED,), Status.CANCELLED, finished_at=finished_at, owner=None))

    async def deleted(self, job_id: int) -> bool | None:
        """A posted image its requester or an admin deleted: it stays counted, and can't be rerolled; a
        grid's kept images go too. From `drawn` as well: its message is posted (Delete is under it) while
        the "posted" write is still being retried, which then finds it deleted and changes nothing."""
        return await self._persist(f"job {job_id} deleted", lambda: self._finish(
            job_id, (Status.DRAWN, Status.POSTED), Status.DELETED))

    async def _finish(self, job_id: int, came_from: tuple[Status, ...], status: Status, *,
                      keep_images: bool = False, **values) -> bool:
        moved = await self._move(job_id, came_from, status, **values)
        # Only when the move applied: a late or refused one must not take the images of a job that
        # went on without it (a "failed" after "posted" would take the images picks start from).
        if moved and not keep_images:
            await asyncio.to_thread(self.images.remove, job_id)
        return moved

    async def _move(self, job_id: int, came_from: tuple[Status, ...], status: Status, **values) -> bool:
        values = {"status": status.value, **values}
        assignments = ", ".join(f"{name} = {value.sql if isinstance(value, Raw) else '?'}"
                                for name, value in values.items())
        params = [value.param if isinstance(value, Raw) else value for value in values.values()]
        cursor = await self.store.write(
            f"UPDATE generations SET {assignments} WHERE id = ? AND status IN {sql_set(came_from)}",
            (*params, job_id))
        return cursor.rowcount == 1

    async def _persist(self, what: str, write: Callable[[], Awaitable[object]]) -> object:
        """Run a write and return what it returned; if the database refuses it, log that once, retry it
        in the background with backoff and return None. The caller goes on either way: an image is not
        held back by the disk."""
        try:
            return await write()
        except sqlite3.Error as error:
            log.warning("could not record %s (%s); retrying in the background", what, error)
        self._retries.spawn(self._retry(what, write))
        return None

    async def _retry(self, what: str, write: Callable[[], Awaitable[object]]) -> None:
        delay = RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            try:
                await write()
            except sqlite3.Error as error:
                log.debug("recording %s failed again (%s)", what, error)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            log.info("recorded %s after all", what)
            return

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for writes being retried; at shutdown, give up on them after `timeout` (the next start
        finds those jobs as they were last recorded, and adopts them)."""
        await self._retries.wait(timeout)
        self._retries.cancel()

    # -- reading a job's image, and adopting what dead processes left ---------------------------

    async def image(self, job_id: int, index: int = 0) -> bytes | None:
        """A kept PNG of a job (image `index` of a grid), if it was kept."""
        return await asyncio.to_thread(self.images.load, job_id, index)

    async def keep_upload(self, png: bytes) -> str:
        """Keep an uploaded picture beside the database; its hash (the jobs' `upload` column)."""
        digest = await asyncio.to_thread(self.images.save_upload, png)
        await self.trim_images()
        return digest

    async def upload(self, digest: str) -> bytes | None:
        """A kept upload by its hash, if it is still kept."""
        return await asyncio.to_thread(self.images.load_upload, digest)

    async def pictures(self, job_id: int, count: int) -> list[bytes] | None:
        """Every kept PNG of a job of `count` images, or None if any is missing."""
        return await asyncio.to_thread(self.images.load_all, job_id, count)

    async def adopt_orphans(self) -> list[Generation]:
        """Take over the unfinished jobs of processes that are gone (crashed, killed, stopped with jobs
        queued), oldest first: running ones go back to the queue. Jobs of live processes stay theirs.
        Each job is adopted once, even by two processes starting together (a compare-and-set on owner)."""
        owners = await self.store.column(
            self.store.connection, f"SELECT DISTINCT owner FROM generations WHERE status IN {sql_set(UNDELIVERED)}")
        adopted: list[int] = []
        for owner in owners:
            if owner == self.owner or await asyncio.to_thread(self.instance.alive, owner):
                continue
            cursor = await self.store.write(
                "UPDATE generations SET owner = ?, "
                "status = CASE status WHEN ? THEN ? ELSE status END, "
                "started_at = CASE status WHEN ? THEN NULL ELSE started_at END "
                f"WHERE owner IS ? AND status IN {sql_set(UNDELIVERED)} RETURNING id",
                (self.owner, Status.RUNNING.value, Status.QUEUED.value, Status.RUNNING.value, owner))
            adopted += [row[0] for row in await cursor.fetchall()]
        await self._sweep_images()
        if not adopted:
            return []
        marks = ", ".join("?" for _ in adopted)
        return await self.store.generations(f"WHERE id IN ({marks}) ORDER BY id", adopted)

    async def _sweep_images(self) -> None:
        """Remove the kept PNGs that nothing needs any more: a job still undelivered needs its own, an image
        posted in the last `keep_s` stays (picks, variations and upscales start from it), and so does the
        source of every unfinished image-to-image job. Asked of the whole table, not of the kept ids, which
        may be tens of thousands (more than SQLite takes as parameters). Then the byte budget, and the
        temporary files of saves a crash cut short."""
        await asyncio.to_thread(self.images.sweep_partials)
        await self._sweep_uploads()
        kept = await asyncio.to_thread(self.images.job_ids)
        if not kept:
            return
        needed = set(await self.store.column(
            self.store.connection,
            f"SELECT id FROM generations WHERE status IN {sql_set(UNDELIVERED)} "
            "UNION SELECT id FROM generations WHERE status = ? AND created_at > ? "
            f"UNION SELECT source_id FROM generations WHERE status IN {sql_set(UNDELIVERED)} AND source_id IS NOT NULL",
            (Status.POSTED.value, self.clock() - self.keep_s)))
        for job_id in kept:
            if job_id not in needed:
                await asyncio.to_thread(self.images.remove, job_id)
        await self.trim_images(measure=True)

    async def _sweep_uploads(self) -> None:
        """Remove the uploads no job needs: one an unfinished job draws from, or a job of the last `keep_s`
        (its rerolls and edits draw from it again), stays."""
        uploads = await asyncio.to_thread(self.images.upload_hashes)
        if not uploads:
            return
        needed = set(await self.store.column(
            self.store.connection,
            f"SELECT upload FROM generations WHERE upload IS NOT NULL AND (status IN {sql_set(UNDELIVERED)} "
            "OR created_at > ?)", (self.clock() - self.keep_s,)))
        for digest in uploads:
            if digest not in needed:
                await asyncio.to_thread(self.images.remove_upload, digest)

    async def trim_images(self, *, measure: bool = False) -> None:
        """Keep the kept PNGs within ZBOT_KEEP_IMAGES_MAX_GB, the oldest jobs' first; never those of a job
        still owed its image, nor the source of an unfinished one. `measure`: read the folder's size from
        the disk first (other processes save and sweep there too). Best effort: a failure is logged."""
        try:
            if measure:
                await asyncio.to_thread(self.images.measure)
            if not self.images.over_budget():
                return
            keep = set(await self.store.column(
                self.store.connection,
                f"SELECT id FROM generations WHERE status IN {sql_set(UNDELIVERED)} UNION SELECT source_id FROM "
                f"generations WHERE status IN {sql_set(UNDELIVERED)} AND source_id IS NOT NULL"))
            removed = await asyncio.to_thread(self.images.trim, keep)
        except (sqlite3.Error, OSError) as error:
            log.warning("could not keep the kept images within ZBOT_KEEP_IMAGES_MAX_GB (%s); trying again "
                        "after the next image", error)
            return
        if removed:
            log.info("kept images over ZBOT_KEEP_IMAGES_MAX_GB: removed those of %d jobs (oldest %s)",
                     len(removed), removed[0])


