"""The use cases every front end shares: draw, reroll, quota. Plain values in, plain values out.

A request flows one way: front end -> validate -> admit (limits + store, one transaction) ->
executor -> back up as a Result, and the row is brought up to date at each step.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from zbot.catalogue import text
from zbot.config import Settings, Window
from zbot.core import moderation, refining, uploads
from zbot.core.background import Background
from zbot.core.bans import Banned, Bans
from zbot.core.executor import Executor
from zbot.core.imaging import encode_png
from zbot.core.jobs import (
    BadInput,
    Cancelled,
    DrawRequest,
    Generation,
    NewJob,
    NotReady,
    Operation,
    Progress,
    Refused,
    RenderFailed,
    RenderSpec,
    Result,
    ShuttingDown,
    Source,
    utc,
)
from zbot.core.lifecycle import Lifecycle
from zbot.core.limits import EVERYWHERE, Policy, Quota, admit, quota
from zbot.core.server_settings import ServerSettings
from zbot.core.service_admin import AdminCases
from zbot.core.service_members import DATABASE_REFUSES, DATABASE_RETRY_S, RESTART_RETRY_S, MemberCases
from zbot.core.store import Store
from zbot.core.validation import validate

log = logging.getLogger(__name__)

STAYS_QUEUED = text("service.stays_queued")


class JobEvents(Protocol):
    """Told how each request ends; zbot.metrics.Metrics is one."""

    def refused(self, refusal: Refused) -> None: ...

    def done(self, result: Result) -> None: ...

    def failed(self, reason: str) -> None: ...


class NoEvents:
    def refused(self, refusal: Refused) -> None:
        pass

    def done(self, result: Result) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass


@dataclass
class Ticket:
    """An admitted job. Await `result()`; ask `position()` and `eta()` while it waits."""

    spec: RenderSpec
    size: str
    _executor: Executor
    _done: asyncio.Task
    progress_listeners: list[Callable[[Progress], None]] = field(default_factory=list)
    channel_id: int | None = None
    user_id: int | None = None

    @property
    def job_id(self) -> int:
        return self.spec.job_id

    def position(self) -> int | None:
        return self._executor.position(self.job_id)

    def eta(self) -> float | None:
        return self._executor.eta(self.job_id)

    async def result(self) -> Result:
        """The finished image; raises RenderFailed, or ShuttingDown if the bot stopped first."""
        return await asyncio.shield(self._done)


class Service(MemberCases, AdminCases):
    """The front door: every use case is a method, here (drawing) or in the mixins (zbot.core.service_members,
    zbot.core.service_admin)."""

    def __init__(self, settings: Settings, store: Store, executor: Executor, lifecycle: Lifecycle, *,
                 clock: Callable[[], float] = time.time, events: JobEvents | None = None,
                 inspector: Callable[[Any], Any] | None = None, servers: ServerSettings | None = None):
        self.settings = settings
        self.store = store
        self.executor = executor
        self.lifecycle = lifecycle
        self.clock = clock
        self.events: JobEvents = events or NoEvents()
        self.inspector = inspector  # zbot.engine.safety.Inspector: to check a kept image again before it is shown
        self.servers = servers  # each server's own settings (/settings)
        self.bans = Bans(store, owners=settings.admin_ids, clock=clock)
        self.moderation = moderation.Moderation(store, lifecycle, executor, clock=lambda: self.clock())
        self.closing = False
        self._background = Background("recording a job", expected=(RenderFailed, ShuttingDown, Cancelled))

    # -- drawing ---------------------------------------------------------------------------------

    def settings_for(self, guild_id: int | None) -> Settings:
        """The settings that apply in a server: the environment's, with the server's own on top."""
        return self.servers.effective(guild_id) if self.servers is not None else self.settings

    def validate(self, request: DrawRequest) -> NewJob:
        return validate(self.settings_for(request.guild_id), request)

    def policy(self, windows: tuple[Window, ...] | None = None, guild_id: int | None = None) -> Policy:
        s = self.settings_for(guild_id)
        scope = guild_id if self.settings.limits_scope == "server" else EVERYWHERE
        return Policy(s.rate_limits if windows is None else windows, s.max_pending_per_user, s.queue_size, scope)

    async def submit(self, request: DrawRequest) -> Ticket:
        """Validate, admit and queue a request. Raises a Refused subclass saying why not: also when the
        database refuses to record it (a full disk), which the Store has logged once."""
        try:
            return await self._submit(request)
        except sqlite3.Error:
            refusal = NotReady(DATABASE_REFUSES, retry_at=utc(self.clock() + DATABASE_RETRY_S))
            self._refused(request, refusal)
            raise refusal from None

    async def _submit(self, request: DrawRequest) -> Ticket:
        if self.closing:
            raise NotReady("service.restarting", retry_at=utc(self.clock() + RESTART_RETRY_S))
        if request.source == "discord":  # bans name Discord users; HTTP keys and the command line are not
            try:
                await self.bans.check(request.user_id, request.guild_id)
            except Banned as refusal:  # counted like any refusal: an admin sees who keeps trying
                await self.store.count_refusal(user_id=request.user_id, guild_id=request.guild_id, source=request.source,
                                               reason=refusal.kind, prompt=request.prompt, error=refusal.message,
                                               at=self.clock())
                self._refused(request, refusal)
                raise
        now = self.clock()
        try:
            settings = self.settings_for(request.guild_id)
            if request.from_image is not None:
                request = await self._upload(request)
            request = await refining.with_parent_style(self.store, request)
            planned = await refining.plan(settings, self.store, request)
            if planned is not None:
                request = planned.request
            job = self.validate(request)
            if planned is not None:
                job = planned.apply(job)
            source = None
            if request.from_image is not None:
                source = Source(png=request.from_image)
            elif job.upload is not None:  # a reroll or an edit of an upload's image: the kept upload
                png = await self.lifecycle.upload(job.upload)
                if png is None:
                    raise BadInput("source.not_kept")
                source = Source(png=png)
            elif job.strength is not None:  # image to image: its source read before it is admitted
                source = await refining.source_of(self.store, self.lifecycle.image, job.source_id, job.source_index,
                                                  uploads=self.lifecycle.upload)
        except BadInput as refusal:
            # Counted, not kept as a row: bad input sent again and again must not grow the file.
            await self.store.count_refusal(user_id=request.user_id, guild_id=request.guild_id, source=request.source,
                                           reason=refusal.kind, prompt=request.prompt, error=refusal.message, at=now)
            self._refused(request, refusal)
            raise
        try:
            job_id = await admit(self.store, self.policy(request.rate_limits, request.guild_id),
                                 replace(job, owner=self.lifecycle.owner),
                                 now=now, exempt=request.is_admin, queue_retry_s=self._queue_retry_s())
        except Refused as refusal:
            self._refused(request, refusal)
            raise
        spec = RenderSpec.of(job_id, job, source)
        try:
            return self.enqueue(spec, job.size, job.channel_id, user_id=request.user_id, source=request.source)
        except ShuttingDown:  # the shutdown began while this was being admitted
            if request.source == "discord":
                raise NotReady(STAYS_QUEUED) from None  # queued in the database: the next start draws it
            await self.lifecycle.failed(job_id, "the bot stopped before drawing it")
            raise NotReady("service.restarting", retry_at=utc(self.clock() + RESTART_RETRY_S)) from None

    async def render_spec(self, job: Generation) -> RenderSpec:
        """The spec of a stored job, to draw it again (after a restart); its source image read again."""
        return await refining.render_spec(self.store, self.lifecycle.image, job, uploads=self.lifecycle.upload)

    async def _upload(self, request: DrawRequest) -> DrawRequest:
        """An uploaded picture decoded (hostile files refused in one sentence: zbot.core.uploads), checked
        like a drawn image before anything is drawn from it, and kept beside the database by its hash."""
        image = await asyncio.to_thread(uploads.decode, request.from_image)
        if request.operation in (Operation.ZOOM, Operation.PAN):  # reframed as it is: kept on the 16-pixel grid
            image = refining.fit_for_reframe(image)
        png = await asyncio.to_thread(encode_png, image)
        verdict = (await self.check_kept([png]))[0]
        if verdict is not None and verdict.flagged and not request.flagged_ok:
            raise BadInput("upload.flagged")
        return replace(request, from_image=png, upload=await self.lifecycle.keep_upload(png))

    def _refused(self, request: DrawRequest, refusal: Refused) -> None:
        self.events.refused(refusal)
        log.info("%s request from user %s refused (%s)", request.source, request.user_id, refusal.kind,
                 extra=dict(user_id=request.user_id, source=request.source, outcome="rejected",
                            reason=refusal.kind))

    def enqueue(self, spec: RenderSpec, size: str, channel_id: int | None = None, *,
                user_id: int | None = None, source: str = "discord") -> Ticket:
        """Hand an already-stored job to the executor (also used to resume jobs after a restart)."""
        listeners: list[Callable[[Progress], None]] = []

        def on_progress(progress: Progress) -> None:
            for listener in list(listeners):
                listener(progress)

        def on_start(at: float) -> None:
            self._background.spawn(self.lifecycle.started(spec.job_id, at))

        future = self.executor.submit(spec, on_progress=on_progress, on_start=on_start)
        done = self._background.spawn(self._complete(spec.job_id, future, user_id, source))
        return Ticket(spec, size, self.executor, done, listeners, channel_id, user_id)

    async def _complete(self, job_id: int, future: asyncio.Future, user_id: int | None, source: str) -> Result:
        who = dict(job_id=job_id, user_id=user_id, source=source)
        try:
            result = await future
        except RenderFailed as exc:
            await self.lifecycle.failed(job_id, exc.reason)
            self.events.failed(exc.reason)
            log.info("job %s (%s, user %s) failed: %s", job_id, source, user_id, exc.reason,
                     extra=dict(who, outcome="failed", error=exc.reason))
            raise
        except Cancelled:
            await self.lifecycle.cancelled(job_id)
            log.info("job %s (%s, user %s) cancelled while queued", job_id, source, user_id,
                     extra=dict(who, outcome="cancelled"))
            raise
        except ShuttingDown:
            if source != "discord":
                # Its caller is told to come back; nobody would collect it after a restart.
                await self.lifecycle.failed(job_id, "the bot stopped before drawing it")
            raise  # a Discord job stays queued: the next start draws it and posts it in its channel
        # A Discord job is posted later (a restart between drawing and posting, a post that fails): its PNG
        # is kept until then, and after for ZBOT_KEEP_IMAGES_DAYS, like an HTTP job's, for the variations
        # and upscales that start from it. A CLI run ends with its process.
        await self.lifecycle.drawn(result, keep=source in ("discord", "http"))
        self.events.done(result)
        log.info("job %s (%s, user %s) done: wait %.2f s, render %.2f s", job_id, source, user_id,
                 result.wait_s, result.render_s,
                 extra=dict(who, outcome="done", wait_s=round(result.wait_s, 3), render_s=round(result.render_s, 3)))
        return result

    async def delivered(self, job_id: int, message_id: int | None = None, *, keep_images: bool = True) -> None:
        """The image reached its user (posted as `message_id` on Discord); its job is over. Its kept PNGs
        stay for ZBOT_KEEP_IMAGES_DAYS unless not `keep_images`."""
        await self.lifecycle.delivered(job_id, message_id, keep_images=keep_images)

    # -- kept images ----------------------------------------------------------------------------

    async def kept_image(self, job_id: int, index: int = 0) -> bytes | None:
        """A job's kept PNG (image `index` of a grid), if it is still kept."""
        return await self.lifecycle.image(job_id, index)

    async def kept_images(self, job_id: int, count: int) -> list[bytes] | None:
        """Every kept PNG of a job of `count` images, or None if any is gone."""
        return await self.lifecycle.pictures(job_id, count)

    async def check_kept(self, pngs: list[bytes]) -> list[Any]:
        """The safety verdicts of kept images by this start's checker and threshold (either may have
        changed since they were drawn): one `zbot.engine.safety.Verdict` (or None: not checked) each.

        The one place a kept image is checked again (a pick from a grid, a post after a restart, HTTP
        working from a grid image). A checker on the GPU waits for the model first: its check must not
        run while the model captures its CUDA graphs. Raises what the checker raises (BrokenImage, and
        SafetyUnavailable when it failed to load)."""
        if self.inspector is None or not getattr(self.inspector, "active", True):
            return [None] * len(pngs)
        checker = getattr(self.inspector, "checker", None)
        if getattr(getattr(checker, "device", None), "type", None) == "cuda":
            await self.executor.ready.wait()
        return [await asyncio.to_thread(self.inspector.png, png) for png in pngs]

    def _queue_retry_s(self) -> float:
        return max(10.0, self.executor.mean_render_s * self.executor.images_ahead / self.executor.workers)

    # -- other use cases -----------------------------------------------------------------------

    async def quota(self, user_id: int, windows: tuple[Window, ...] | None = None,
                    guild_id: int | None = None) -> Quota:
        return await quota(self.store, self.policy(windows, guild_id), user_id, now=self.clock())

    def cancel(self, job_id: int, *, by_admin: bool = False) -> bool:
        """Take a queued job out of the queue: its ticket's result raises Cancelled, its row becomes
        cancelled and stops counting. False if it has started (or is unknown)."""
        return self.executor.cancel(job_id, by_admin=by_admin)

    def close(self) -> None:
        """Take no more requests (shutdown): they are refused with "restarting"."""
        self.closing = True

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the bookkeeping of finished jobs (used at shutdown and in tests)."""
        await self._background.wait(timeout)
        await self.lifecycle.settle(timeout)
