"""Carrying one job from the interaction to the posted image: acknowledge, queue position and ETA,
step progress (at most one edit a second), then the image with its buttons (zbot.bot.posting).

Nothing between admission and the post may lose the job: an acknowledgement, a progress edit or a
status message that fails (an HTTP error, a dropped connection, a timeout) is logged and the job goes
on; the image itself is posted by the Poster, which keeps trying until it is there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import discord

from zbot.bot import messages
from zbot.bot.discord_errors import DISCORD_ERRORS, describe
from zbot.bot.errors import say_privately
from zbot.bot.i18n import localize_view, tr
from zbot.bot.posting import NO_MENTIONS, Destination, Poster
from zbot.core.background import Background
from zbot.core.jobs import Cancelled, DrawRequest, Progress, Refused, RenderFailed, ShuttingDown
from zbot.core.service import Service, Ticket

log = logging.getLogger(__name__)

ACK_BUDGET_S = 1.5  # answer well inside Discord's 3 s even when admission is slow
EDIT_INTERVAL_S = 1.0


class Delivery:
    def __init__(self, service: Service, poster: Poster,
                 cancel_view: Callable[[int], discord.ui.View] | None = None):
        self.service = service
        self.poster = poster
        self.cancel_view = cancel_view  # the Cancel button, under a job while it waits
        self._background = Background("delivering a job")

    # -- from an interaction ------------------------------------------------------------------

    async def draw(self, interaction: discord.Interaction, request: DrawRequest | Awaitable[DrawRequest]) -> None:
        """Admit the request and answer at once: a refusal only the caller sees, or the queue message.
        Once admitted, the job is followed to its post whatever happens to the interaction.

        `request` may still be on its way (an attached picture being downloaded, up to its timeout): it is
        awaited inside the acknowledgement budget like admission itself, so a slow upload is acknowledged
        in time, and a refusal of the picture stays private like any other."""
        started = time.monotonic()
        ready: list[DrawRequest] = []

        async def admit() -> Ticket:
            ready.append(request if isinstance(request, DrawRequest) else await request)
            return await self.service.submit(ready[0])

        admission = asyncio.ensure_future(admit())
        done, _ = await asyncio.wait({admission}, timeout=ACK_BUDGET_S)
        if not done:
            try:
                await interaction.response.defer(thinking=True)
            except DISCORD_ERRORS as error:
                # Admission goes on; if the job is admitted, its image still reaches the channel.
                log.warning("could not acknowledge an interaction from user %s (%s)", interaction.user.id,
                            describe(error))
        try:
            ticket = await admission
        except Refused as refusal:
            await self._refuse(interaction, refusal)
            return
        except Exception:
            # The error funnel apologises in a follow-up, which would fill a public "thinking" message.
            if interaction.response.is_done():
                await self._unthink(interaction)
            raise
        where = Destination(ready[0].user_id, ticket.channel_id, interaction, started)
        text, view = self._status(ticket, None, interaction.locale), localize_view(self._view(ticket), interaction.locale)
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=text, view=view, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(text, view=view or discord.utils.MISSING,
                                                        allowed_mentions=NO_MENTIONS, suppress_embeds=True)
        except DISCORD_ERRORS as error:
            # The job is admitted: the post tries the interaction's message, then the channel.
            log.warning("job %s: could not answer the interaction (%s)", ticket.job_id, describe(error))
        except Exception:  # noqa: BLE001 - whatever it was, the admitted job must still be followed
            log.exception("job %s: answering the interaction failed", ticket.job_id)
        self.spawn(self._follow(ticket, where))

    async def _refuse(self, interaction: discord.Interaction, refusal: Refused) -> None:
        """A refusal only its user sees, also after a slow admission was deferred publicly."""
        text = messages.refusal(refusal, interaction.locale)
        if interaction.response.is_done() and not await self._unthink(interaction):
            log.warning("a refusal is not told to user %s: it would show to the whole channel", interaction.user.id)
            return
        try:
            await say_privately(interaction, text)
        except DISCORD_ERRORS as error:
            log.warning("could not tell user %s of a refusal (%s)", interaction.user.id, describe(error))

    async def _unthink(self, interaction: discord.Interaction) -> bool:
        """Remove the public "thinking" message of a slow admission; True once it is gone.

        A deferred response keeps the visibility it was deferred with: editing it, or a first follow-up
        (which Discord makes that message, whatever its flags), shows the text to the whole channel.
        Deferring privately instead would make the queue position, the progress and the image private too,
        and the image would need a channel post with the bot token; so admitted jobs keep the public
        message, and the rare refusal after a slow admission removes it and goes in a private follow-up."""
        try:
            await interaction.delete_original_response()
        except discord.NotFound:
            return True  # gone already
        except DISCORD_ERRORS as error:
            log.warning("could not remove the acknowledgement for user %s (%s)", interaction.user.id,
                        describe(error))
            return False
        return True

    async def _follow(self, ticket: Ticket, where: Destination) -> None:
        """Show the queue position, then the steps, editing at most once a second; then the result."""
        latest: list[Progress | None] = [None]
        ticket.progress_listeners.append(lambda progress: latest.__setitem__(0, progress))
        result_task = asyncio.ensure_future(ticket.result())
        shown, shown_view = self._status(ticket, None, where.locale()), self._view(ticket) is not None
        while not result_task.done():
            await asyncio.wait({result_task}, timeout=EDIT_INTERVAL_S)
            if result_task.done() or not where.interaction_usable():
                continue
            text, view = (self._status(ticket, latest[0], where.locale()),
                          localize_view(self._view(ticket), where.locale()))
            if text == shown and (view is not None) == shown_view:
                continue
            try:
                # The Cancel button while the job waits; gone once it is being drawn.
                await where.interaction.edit_original_response(content=text, view=view,
                                                               allowed_mentions=NO_MENTIONS)
                shown, shown_view = text, view is not None
            except DISCORD_ERRORS as error:
                # Discord's own answer (an expired token, an interaction never acknowledged, 5xx past
                # discord.py's retries): the interaction's message is no good, the image goes to the channel.
                # A dropped connection or a timeout: try again at the next edit.
                if isinstance(error, discord.HTTPException):
                    where.drop_interaction()
                log.warning("progress edit for job %s failed (%s)", ticket.job_id, describe(error))
        await self._finish(ticket, result_task, where)

    async def _finish(self, ticket: Ticket, result_task: asyncio.Future, where: Destination) -> None:
        try:
            result = result_task.result()
        except Cancelled as cancel:
            await self.poster.say(where, messages.CANCELLED_BY_ADMIN if cancel.by_admin else messages.CANCELLED,
                                  clear_view=True)
            return
        except ShuttingDown:
            await self.poster.say(where, messages.STOPPED, clear_view=True)
            return
        except RenderFailed as failure:
            await self.poster.say(where, messages.failed(failure.reason), clear_view=True)
            return
        await self.poster.post(result, ticket.size, where)

    async def deliver_to_channel(self, ticket: Ticket, user_id: int, channel_id: int) -> None:
        """For jobs resumed after a restart: no interaction any more, so post with the bot token."""
        where = Destination(user_id, channel_id, guild_locale=self.poster.guild_locale(channel_id))
        try:
            result = await ticket.result()
        except Cancelled as cancel:
            if cancel.by_admin:  # its requester cancelling saw it on their own click
                await self.poster.say(where, messages.CANCELLED_BY_ADMIN)
            return
        except ShuttingDown:
            return  # still queued: the next start draws it
        except RenderFailed as failure:
            await self.poster.say(where, messages.failed(failure.reason))
            return
        await self.poster.post(result, ticket.size, where)

    # -- bookkeeping -------------------------------------------------------------------------

    def _view(self, ticket: Ticket) -> discord.ui.View | None:
        position = ticket.position()
        return self.cancel_view(ticket.job_id) if self.cancel_view and position else None

    def _status(self, ticket: Ticket, progress: Progress | None, locale=None) -> str:
        position = ticket.position()
        if position == 0 and progress is not None:
            return tr(locale, messages.drawing(progress))
        return tr(locale, messages.queued(position, ticket.eta(), self.service.warming_up))

    def spawn(self, coro) -> asyncio.Task:
        return self._background.spawn(coro)

    async def wait(self, timeout: float) -> None:
        """Until every delivery in flight has finished, or `timeout` has passed."""
        await self._background.wait(timeout)

    async def close(self, timeout: float) -> None:
        """At shutdown: let deliveries finish (the running job gets posted), then stop the ones still
        trying; their images are kept and posted at the next start."""
        await self._background.wait(timeout)
        self._background.cancel()
