"""The use cases every front end shares: draw, reroll, quota. Plain values in, plain values out.

A request flows one way: front end -> validate -> admit (limits + store, one transaction) ->
executor -> back up as a Result, and the row is brought up to date at each step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from zbot.catalogue import text
from zbot.config import Settings, Window
from zbot.core import moderation, picking, privacy, recovery, refining, uploads
from zbot.core.background import Background
from zbot.core.bans import Actor, Ban, BanEvent, Banned, Bans
from zbot.core.executor import Executor
from zbot.core.imaging import encode_png
from zbot.core.jobs import (
    MAX_ID,
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
from zbot.core.server_settings import Change, ServerSettings, SettingEvent
from zbot.core.store import Store
from zbot.core.validation import validate

log = logging.getLogger(__name__)

RESTART_RETRY_S = 60  # what a request that arrives during a shutdown is told
DATABASE_RETRY_S = 60
DATABASE_REFUSES = text("service.database")
REGISTERED_KEY = "synced_guild_ids"  # bot_state: the servers the commands were registered in (zbot.bot.sync)
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


class Service:
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

    # -- bans (zbot.core.bans: who may ban where is checked there) -------------------------------------

    async def ban(self, actor: Actor, user_id: int, guild_id: int | None, reason: str = "",
                  days: int | None = None) -> Ban:
        """Stop a member's requests in a server (None: everywhere) for `days` (None: until lifted)."""
        ban = await self.bans.ban(actor, user_id, guild_id, reason, days)
        self._log_ban("banned", actor, ban)
        return ban

    async def ban_reported(self, actor: Actor, report_id: int) -> Ban:
        """Ban the requester of a reported image in the server it was drawn in, with the report as the
        reason. BadInput if they are banned there already."""
        generation = await self.moderation.reported_image(report_id)
        ban = await self.bans.ban(actor, generation.user_id, generation.guild_id, f"report #{report_id}", again=False)
        self._log_ban("banned", actor, ban)
        return ban

    async def unban(self, actor: Actor, user_id: int, guild_id: int | None) -> Ban:
        ban = await self.bans.unban(actor, user_id, guild_id)
        self._log_ban("unbanned", actor, ban)
        return ban

    async def ban_list(self, guild_id: int | None) -> tuple[list[Ban], list[BanEvent]]:
        """The bans standing in a server (with those for every server), and its last bans and unbans."""
        return await self.bans.current(guild_id), await self.bans.history(guild_id)

    def _log_ban(self, what: str, actor: Actor, ban: Ban) -> None:
        where = f"server {ban.guild_id}" if ban.guild_id is not None else "every server"
        log.info("user %s %s user %s in %s (%s)", actor.user_id, what, ban.user_id, where, ban.reason,
                 extra=dict(user_id=ban.user_id))

    # -- recovery at start, housekeeping and the HTTP front end (zbot run's part; zbot.core.recovery) --

    async def recover(self) -> recovery.Recovery:
        """Take over what stopped or crashed processes left unfinished, oldest first: kept images to post
        (each through `kept_result`), users to tell, and jobs queued again whose tickets to deliver."""
        return await recovery.recover(self, self.clock())

    async def kept_result(self, kept: recovery.Kept) -> Result | None:
        """A recovered job's kept images as a Result, checked again (`check_kept`); None: not at this
        start; RenderFailed (its job marked failed) when they can't be posted."""
        return await recovery.kept_result(self, kept)

    async def housekeeping(self) -> None:
        """Every minute while running: the servers' settings read again, and a write that tells /healthz
        the database takes writes. Logs its own failures; never raises."""
        await recovery.housekeeping(self)

    async def own_image(self, user_id: int, job_id: int) -> Generation | None:
        """The job `job_id` if `user_id` asked for it; None for another's or for none (an id past
        SQLite's integers included)."""
        job = await self.store.get(job_id) if 0 <= job_id <= MAX_ID else None
        return job if job is not None and job.user_id == user_id else None

    async def withheld(self, job_id: int) -> None:
        """The image was not handed over: the safety check flagged it and its requester may not have it.
        It still counts against their limits."""
        await self.lifecycle.blocked(job_id)

    def kept_bytes(self) -> tuple[int, int]:
        """The kept images' bytes on disk and their budget (ZBOT_KEEP_IMAGES_MAX_GB)."""
        return self.lifecycle.images.bytes, self.lifecycle.images.max_bytes

    # -- admins: reports, a server's queue, its settings, usage (the admin cogs' part; zbot.core.moderation) --

    async def reportable(self, generation_id: int) -> Generation:
        """The image a Report button is under; BadInput when it is no longer in the records."""
        return await self.moderation.reportable(generation_id)

    async def report(self, generation_id: int, reporter_id: int, note: str) -> moderation.Reported:
        """File a report of an image (one per person and image: a second one has no id)."""
        return await self.moderation.report(generation_id, reporter_id, note)

    async def report_posted(self, report_id: int, message_id: int) -> None:
        """The report was posted in the admins' channel as `message_id`."""
        await self.store.update_report(report_id, report_message_id=message_id)

    async def delete_reported(self, actor: Actor, report_id: int,
                              take_down: Callable[[Generation], Awaitable[None]]) -> Generation:
        """Delete a reported image (a bot owner, or a manager of its server): `take_down` removes it
        from view, raising BadInput to say why it could not; then it is recorded deleted and the report
        resolved. BadInput when it is gone, not on show, or the actor may not."""
        return await self.moderation.delete_reported(actor, report_id, take_down)

    async def queue(self, guild_id: int | None) -> moderation.QueueListing:
        """A server's jobs waiting and being drawn, with their places in this zbot's queue."""
        return await self.moderation.queue(guild_id)

    async def cancel_queued(self, guild_id: int | None, job_id: int, actor_id: int) -> Generation:
        """An admin takes a waiting job of their server out of the queue (its requester is told)."""
        return await self.moderation.cancel_queued(guild_id, job_id, actor_id)

    def server_settings(self, guild_id: int) -> list[moderation.ServerSetting]:
        """Every setting a server may change: what applies there, and whether the server set it."""
        return moderation.shown_settings(self.servers, guild_id)

    async def set_server_setting(self, guild_id: int, name: str, value: str, actor_id: int, *,
                                 owner: bool) -> Change:
        """Raises BadInput with the setting's own sentence for a bad value or one above the ceilings."""
        return await moderation.set_setting(self.servers, guild_id, name, value, actor_id, owner=owner)

    async def reset_server_setting(self, guild_id: int, name: str, actor_id: int) -> Change:
        return await moderation.reset_setting(self.servers, guild_id, name, actor_id)

    async def settings_history(self, guild_id: int) -> list[SettingEvent]:
        """The last changes of a server's settings, newest first."""
        return await moderation.settings_history(self.servers, guild_id)

    async def stats(self, guild_id: int | None, user_id: int | None = None) -> moderation.Stats:
        """Usage in a server (None: every server), or one member's there, with the per-day chart."""
        return await self.moderation.stats(guild_id, user_id)

    # -- drawing, picking and posting on Discord (the drawing cog's and the poster's part; zbot.core.picking) --

    async def job(self, job_id: int) -> Generation | None:
        """A job as recorded; None for none (an id past SQLite's integers included)."""
        return await self.store.get(job_id) if 0 <= job_id <= MAX_ID else None

    async def latest_job(self, user_id: int, channel_id: int | None) -> Generation | None:
        """The user's latest job in a channel (what /reroll draws again)."""
        return await self.store.latest_for(user_id, channel_id)

    async def job_by_message(self, message_id: int) -> Generation | None:
        """The job posted as a message (what the Reroll message menu draws again)."""
        return await self.store.by_message(message_id) if 0 <= message_id <= MAX_ID else None

    @property
    def warming_up(self) -> bool:
        """The model is still loading: requests queue, and are told so."""
        return not self.executor.ready.is_set()

    async def showing(self, flags: list[bool], guild_id: int | None, *,
                      flagged_shown: Callable[[], Awaitable[bool]]) -> picking.Showing:
        """How images with these safety flags are shown in a server (the decision in zbot.core.picking):
        `flagged_shown` says whether the place may show flagged ones (asked only if one is flagged). When
        `nothing` is shown, the front end tells its user and calls `withheld`: the job still counts."""
        spoilers = self.settings_for(guild_id).safety_nsfw_channels == "spoiler"
        return await picking.showing(flags, spoilers=spoilers, flagged_shown=flagged_shown)

    async def pick(self, grid_id: int, index: int, picker: picking.Picker, *,
                   may_pick: Callable[[Generation], bool], flagged_shown: Callable[[], Awaitable[bool]],
                   checking: Callable[[], Awaitable[None]]) -> picking.Picked:
        """Image `index` of a posted grid, to post alone: checked again (`check_kept`) and shown as
        `showing` decides, recorded as a drawn job of its own that costs nothing (the lifecycle's
        `picked`); or `redraw` when its kept image is gone. `checking` is awaited before the check, which
        may wait for the model (the front end acknowledges its user there). Raises BadInput, Banned or
        NotReady saying why not; a withheld pick records nothing."""
        if self.closing:
            raise NotReady("service.restarting", retry_at=utc(self.clock() + RESTART_RETRY_S))
        grid = picking.pickable(await self.job(grid_id), index, may_pick)
        try:  # a ban stops picks too: each posts an image
            await self.bans.check(picker.user_id, picker.guild_id)
        except Banned as refusal:  # counted like a refused draw's
            await self.store.count_refusal(user_id=picker.user_id, guild_id=picker.guild_id, source="discord",
                                           reason=refusal.kind, prompt=grid.prompt, error=refusal.message,
                                           at=self.clock())
            self.events.refused(refusal)
            raise
        png = await self.kept_image(grid.id, index)
        if png is None:  # kept no longer: the same seed, size and steps draw the same image
            return picking.Picked(grid, index)
        await checking()
        [verdict] = await self.check_kept([png])
        flagged = verdict is not None and verdict.flagged
        shown = await self.showing([flagged], picker.guild_id, flagged_shown=flagged_shown)
        if shown.nothing:
            return picking.Picked(grid, index, withheld=True)
        try:
            job_id = await self.lifecycle.picked(grid, index, user_id=picker.user_id, guild_id=picker.guild_id,
                                                 channel_id=picker.channel_id, interaction_id=picker.interaction_id,
                                                 verdict=verdict)
        except sqlite3.Error:  # logged once by the Store; the pick can be clicked again
            raise NotReady(DATABASE_REFUSES, retry_at=utc(self.clock() + DATABASE_RETRY_S)) from None
        return picking.Picked(grid, index, job_id, png, spoiler=shown.spoiler)

    async def unposted(self, job_id: int, reason: str = "it could not be posted") -> None:
        """A drawn image that can't reach its user (Discord refused it for good, a pick's post failed)."""
        await self.lifecycle.failed(job_id, reason)

    async def delete(self, job_id: int) -> None:
        """A posted image its requester or an admin deleted: it stays counted, and can't be rerolled."""
        await self.lifecycle.deleted(job_id)

    async def registered_servers(self) -> list[int]:
        """The servers the commands were registered in by earlier starts."""
        return json.loads(await self.store.state(REGISTERED_KEY) or "[]")

    async def set_registered_servers(self, guild_ids: list[int]) -> None:
        await self.store.set_state(REGISTERED_KEY, json.dumps(sorted(guild_ids)))

    # -- a member's own records: /history, /forget, `zbot forget` (zbot.core.privacy) ----------------------

    async def history(self, user_id: int, guild_id: int | None, page: int = 0) -> privacy.HistoryPage:
        """A member's images in a server, newest first, ten to a page."""
        return await privacy.history(self.store, user_id, guild_id, page)

    async def forget(self, user_id: int, guild_id: int | None, *, delete_messages: bool = False) -> privacy.Forgotten:
        """Forget what zbot keeps about a member in a server (prompts, kept images, reports' notes); the
        limits still count their images until the longest window passes. With `delete_messages`, the
        result names the messages posted for them, for the front end to delete."""
        return await privacy.forget(self.store, self.lifecycle.images, user_id, guild_id, now=self.clock(),
                                    keep_s=self._longest_window_s(guild_id), delete_messages=delete_messages)

    async def forget_everywhere(self, user_id: int) -> privacy.Forgotten:
        """A bot owner's forget of a user in every server (`zbot forget`, for requests made elsewhere)."""
        return await privacy.forget(self.store, self.lifecycle.images, user_id, privacy.EVERYWHERE,
                                    now=self.clock(), keep_s=self._longest_window_s(None))

    def _longest_window_s(self, guild_id: int | None) -> int:
        return privacy.longest_window_s(self.settings, self.settings_for(guild_id))

    def close(self) -> None:
        """Take no more requests (shutdown): they are refused with "restarting"."""
        self.closing = True

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the bookkeeping of finished jobs (used at shutdown and in tests)."""
        await self._background.wait(timeout)
        await self.lifecycle.settle(timeout)
