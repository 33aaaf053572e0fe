"""Recovery: taking over the jobs that stopped or crashed processes left unfinished, and the periodic
housekeeping of a running bot. Plain values out; the front end only posts what it is given.

Behind `Service.recover`, `Service.kept_result` and `Service.housekeeping` (zbot.core.service).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zbot.core.jobs import BadInput, BrokenImage, Generation, Picture, RenderFailed, Result, Status

if TYPE_CHECKING:
    from zbot.core.service import Service, Ticket

log = logging.getLogger(__name__)

LOST = "lost"  # too old to draw now: its user is told to draw it again
FAILED = "failed"  # can't be drawn again: its user is told why (`reason`)
SOURCE_GONE = "the image it starts from is gone"
NOT_CHECKED = "it could not be checked"


@dataclass(frozen=True)
class Kept:
    """A job drawn before the restart whose images were kept: to be posted, not drawn again, once
    `Service.kept_result` has checked them with this start's checker."""

    job: Generation
    pngs: tuple[bytes, ...]

    @property
    def size(self) -> str:
        return size_of(self.job)


@dataclass(frozen=True)
class Notice:
    """A job of a previous run that will not be drawn: its user is told. `kind` is LOST or FAILED (with a
    `reason` safe to show)."""

    job: Generation
    kind: str
    reason: str = ""


@dataclass
class Recovery:
    """What a takeover leaves to the front end, each list oldest first."""

    kept: list[Kept] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    resumed: list[Ticket] = field(default_factory=list)  # queued again: deliver each into its channel


def size_of(job: Generation) -> str:
    return job.size or f"{job.width}x{job.height}"


async def recover(service: Service, now: float | None = None) -> Recovery:
    """Adopt the jobs of processes that are gone (not those of a zbot still running on the database):
    kept images to post, users to tell, and jobs queued again to draw."""
    now = time.time() if now is None else now
    lifecycle = service.lifecycle
    recovery = Recovery()
    for job in await lifecycle.adopt_orphans():
        if job.source != "discord" or job.channel_id is None or job.count < 1:
            # An HTTP or CLI caller is gone with its process: nobody would collect the image. (A pick is
            # a click on a grid, and can be clicked again.)
            await lifecycle.failed(job.id, "interrupted by a restart")
            continue
        # A kept PNG exists only once a render is whole: post it, however old, whatever the row says
        # (a "drawn" write may have been lost with the process).
        pngs = await lifecycle.pictures(job.id, job.count)
        if pngs is not None:
            recovery.kept.append(Kept(job, tuple(pngs)))
            log.info("posting job %s, drawn before the restart", job.id)
            continue
        too_old = job.width is None or now - job.created_at > service.settings.recovery_max_age
        if too_old and job.status == Status.DRAWN:
            # Drawn long ago and its image not kept (by an older zbot): nobody waits for it any more.
            await lifecycle.failed(job.id, "not posted before a restart")
            continue
        if too_old:
            await lifecycle.failed(job.id, "lost when the bot restarted")
            recovery.notices.append(Notice(job, LOST))
            log.info("job %s is too old to resume after a restart; marked failed and its user told", job.id)
            continue
        await lifecycle.requeue(job.id)  # drawn, but its image was not kept: draw it again
        try:
            spec = await service.render_spec(job)
        except BadInput:  # an image-to-image job whose source is gone and can't be drawn again
            await lifecycle.failed(job.id, SOURCE_GONE)
            recovery.notices.append(Notice(job, FAILED, SOURCE_GONE))
            continue
        recovery.resumed.append(service.enqueue(spec, size_of(job), job.channel_id, user_id=job.user_id,
                                                source=job.source))
        log.info("resuming job %s from a previous run (%s)", job.id, job.status)
    return recovery


async def kept_result(service: Service, kept: Kept) -> Result | None:
    """The kept images as a Result, checked again by this start's checker and threshold (the settings
    may have changed). None when the checker failed to load: this start ends and the next one posts
    them. RenderFailed (the job marked failed) when they can't be checked."""
    job = kept.job
    try:
        verdicts = await service.check_kept(list(kept.pngs))
    except BrokenImage as exc:
        reason = exc.reason
    except Exception:  # noqa: BLE001 - an image that can't be checked is not posted
        # A checker that failed to load fails the model's load too (it loads first, on the same worker):
        # the start is ending, and the job stays for the next one.
        await service.executor.ready.wait()
        if service.executor.load_error is not None:
            return None
        log.warning("job %s, drawn before the restart, could not be checked", job.id, exc_info=True)
        reason = NOT_CHECKED
    else:
        pictures = tuple(Picture(seed, png, verdict)
                         for seed, png, verdict in zip(job.seeds, kept.pngs, verdicts, strict=True))
        return Result(job.id, pictures, job.width, job.height, job.steps, job.prompt, job.render_s or 0.0, 0.0,
                      style=job.style)
    log.warning("job %s, drawn before the restart, is not posted: %s", job.id, reason)
    await service.lifecycle.failed(job.id, reason)
    raise RenderFailed(reason)


async def housekeeping(service: Service) -> None:
    """What a running bot does every minute besides the takeover; each part logs its own failure."""
    if service.servers is not None:
        try:  # what `zbot settings` or another zbot on this database changed
            await service.servers.load()
        except Exception:
            log.exception("reading the servers' settings failed; the ones read before apply")
    try:  # a write, so that /healthz sees a database that takes writes again even when nobody draws
        await service.store.set_state("alive_at", str(time.time()))
    except sqlite3.Error:
        pass  # the Store logged it when writes started failing
