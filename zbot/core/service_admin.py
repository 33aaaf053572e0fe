"""Service's use cases for a server's managers and the bot's owners: bans, reports, a server's queue, its
settings and its usage. A mixin of zbot.core.service.Service (the front door), kept apart to be read in one
sitting; it uses the Service's store, lifecycle, bans and moderation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from zbot.core import moderation
from zbot.core.bans import Actor, Ban, BanEvent
from zbot.core.jobs import (
    Generation,
)
from zbot.core.server_settings import Change, SettingEvent

log = logging.getLogger(__name__)


class AdminCases:
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
