"""Service's use cases around a member's images after they are drawn: recovery at start, picking from a
grid, posting and withholding, deleting, and a member's own records (/history, /forget). A mixin of
zbot.core.service.Service (the front door), kept apart to be read in one sitting."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable

from zbot.catalogue import text
from zbot.core import picking, privacy, recovery
from zbot.core.bans import Banned
from zbot.core.jobs import (
    MAX_ID,
    Generation,
    NotReady,
    Result,
    utc,
)

log = logging.getLogger(__name__)

RESTART_RETRY_S = 60  # what a request that arrives during a shutdown is told
DATABASE_RETRY_S = 60
DATABASE_REFUSES = text("service.database")
REGISTERED_KEY = "synced_guild_ids"  # bot_state: the servers the commands were registered in (zbot.bot.sync)


class MemberCases:
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
