"""The admins' use cases behind Service: reporting an image and deleting it from its report, a server's
queue (/queue) and cancelling from it, each server's settings (view, set, reset, history) and the usage
statistics with their per-day chart. Plain values in and out; the front ends turn them into messages.
Who may do what is checked here where it depends on the data (the server a reported image is in)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date

from zbot.catalogue import text
from zbot.core.bans import Actor
from zbot.core.chart import per_day_chart
from zbot.core.executor import Executor
from zbot.core.jobs import MAX_ID, MIN_ID, PENDING, BadInput, Generation, Status, sql_set
from zbot.core.lifecycle import Lifecycle
from zbot.core.server_settings import Change, ServerSettings, SettingEvent
from zbot.core.store import Store
from zbot.core.usage import UsageReport, usage_report

log = logging.getLogger(__name__)

NOTE_LIMIT = 500  # characters of a report's note (the form's own limit too)
IMAGE_GONE = text("image.gone")
REPORTED_GONE = text("report.gone")


@dataclass(frozen=True)
class Reported:
    """A report as filed: its id (None: this person had reported this image already) and the image."""

    report_id: int | None
    generation: Generation


@dataclass(frozen=True)
class QueuedJob:
    """A job of a server's queue, as /queue lists it."""

    job_id: int
    user_id: int
    prompt: str
    created_at: float
    status: Status
    position: int | None  # in this zbot's queue: 0 drawing, 1 next, ...; None: not in it
    mine: bool  # False: another zbot on this database holds it (or one that stopped, until ours adopts it)

    @property
    def cancellable(self) -> bool:
        return self.mine and self.status == Status.QUEUED


@dataclass(frozen=True)
class QueueListing:
    jobs: list[QueuedJob]  # this zbot's in queue order, then those another zbot holds
    depth: int  # jobs waiting and running in this zbot's whole queue, every server's


@dataclass(frozen=True)
class ServerSetting:
    name: str
    value: str  # what applies, written as in the environment
    own: bool  # set by the server; else the bot's default
    held: str | None = None  # the server's stored value, when the owner's settings hold it back


@dataclass(frozen=True)
class Stats:
    report: UsageReport
    depth: int  # jobs in the whole queue now
    chart: bytes | None  # PNG of images per day; None when there were none


class Moderation:
    def __init__(self, store: Store, lifecycle: Lifecycle, executor: Executor, *,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.lifecycle = lifecycle
        self.executor = executor
        self.clock = clock

    # -- reports -------------------------------------------------------------------------------

    async def reportable(self, generation_id: int) -> Generation:
        generation = await self.store.get(generation_id)
        if generation is None:
            raise BadInput(IMAGE_GONE)
        return generation

    async def report(self, generation_id: int, reporter_id: int, note: str) -> Reported:
        generation = await self.reportable(generation_id)
        report_id = await self.store.add_report(generation_id, reporter_id, generation.guild_id,
                                                note.strip()[:NOTE_LIMIT], self.clock())
        if report_id is not None:
            log.warning("report %s: user %s reported job %s: %r", report_id, reporter_id, generation_id, note[:200])
        return Reported(report_id, generation)

    async def reported_image(self, report_id: int) -> Generation:
        """A report's image; BadInput when the report or the image is gone."""
        report = await self.store.report(report_id) if MIN_ID <= report_id <= MAX_ID else None
        generation = await self.store.get(report["generation_id"]) if report else None
        if generation is None:
            raise BadInput(REPORTED_GONE)
        return generation

    async def delete_reported(self, actor: Actor, report_id: int,
                              take_down: Callable[[Generation], Awaitable[None]]) -> Generation:
        generation = await self.reported_image(report_id)
        if not (actor.owner or (actor.manages is not None and actor.manages == generation.guild_id)):
            raise BadInput("delete.owners_or_managers")
        if generation.status != Status.POSTED or generation.message_id is None or generation.channel_id is None:
            raise BadInput("delete.not_on_show")
        await take_down(generation)  # raises BadInput saying why, and then nothing is recorded
        await self.lifecycle.deleted(generation.id)
        await self.store.update_report(report_id, resolved_by=actor.user_id, resolved_at=self.clock())
        log.info("report %s: job %s deleted by user %s", report_id, generation.id, actor.user_id)
        return generation

    # -- a server's queue ----------------------------------------------------------------------

    async def queue(self, guild_id: int | None) -> QueueListing:
        rows = await self.store.generations(f"WHERE guild_id = ? AND status IN {sql_set(PENDING)} ORDER BY id",
                                            (guild_id,))
        mine = self.lifecycle.owner
        jobs = [QueuedJob(row.id, row.user_id, row.prompt, row.created_at, row.status, self.executor.position(row.id),
                          row.owner == mine) for row in rows]
        # This process's queue has no position for another zbot's jobs, and can't cancel them: they go last.
        jobs.sort(key=lambda job: (not job.mine, job.position or 0, job.job_id))
        return QueueListing(jobs, self.executor.depth)

    async def cancel_queued(self, guild_id: int | None, job_id: int, actor_id: int) -> Generation:
        job = await self.store.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise BadInput("queue.not_here")
        if not self.executor.cancel(job_id, by_admin=True):
            raise BadInput("queue.started")
        log.info("job %s cancelled by admin %s", job_id, actor_id, extra=dict(user_id=actor_id))
        return job

    # -- usage ---------------------------------------------------------------------------------

    async def stats(self, guild_id: int | None, user_id: int | None = None) -> Stats:
        report = await usage_report(self.store, now=self.clock(), user_id=user_id, guild_id=guild_id)
        chart = None
        if report.per_day:  # drawn off the event loop
            chart = await asyncio.to_thread(per_day_chart, report.per_day, date.fromisoformat(report.today))
        return Stats(report, self.executor.depth, chart)


# -- each server's settings (zbot.core.server_settings keeps them) ------------------------------------

def shown_settings(servers: ServerSettings, guild_id: int) -> list[ServerSetting]:
    held = servers.held(guild_id)
    return [ServerSetting(name, value, own, held.get(name)) for name, value, own in servers.describe(guild_id)]


async def set_setting(servers: ServerSettings, guild_id: int, name: str, value: str, actor_id: int, *,
                      owner: bool) -> Change:
    change = await servers.set(guild_id, name, value, actor_id, owner=owner)
    log.info("user %s set %s=%r in server %s (was %r)", actor_id, name, change.new, guild_id, change.old,
             extra=dict(user_id=actor_id))
    return replace(change, applies=_applies(servers, guild_id, name))


async def reset_setting(servers: ServerSettings, guild_id: int, name: str, actor_id: int) -> Change:
    change = await servers.reset(guild_id, name, actor_id)
    log.info("user %s reset %s in server %s (was %r)", actor_id, name, guild_id, change.old,
             extra=dict(user_id=actor_id))
    return replace(change, applies=_applies(servers, guild_id, name))


async def settings_history(servers: ServerSettings, guild_id: int) -> list[SettingEvent]:
    return await servers.history(guild_id)


def _applies(servers: ServerSettings, guild_id: int, name: str) -> str:
    return next((setting.value for setting in shown_settings(servers, guild_id) if setting.name == name), "")
