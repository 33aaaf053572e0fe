"""Carrying one job from the interaction to the posted image: acknowledge, queue position and ETA,
step progress (at most one edit a second), then the image with its buttons.

The interaction token lives 15 minutes. A job that finishes later, or whose token the API rejects
(401, code 50027), is posted into its channel with the bot token instead: nothing rendered is lost.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time

import aiohttp
import discord

from ..background import Background
from ..jobs import DrawRequest, Progress, Refused, RenderFailed, Result, ShuttingDown
from ..service import Service, Ticket
from . import messages
from .context import say_privately
from .views import result_view

log = logging.getLogger(__name__)

ACK_BUDGET_S = 1.5  # answer well inside Discord's 3 s even when admission is slow
TOKEN_LIFE_S = 15 * 60 - 30  # stop using the token a little before Discord does
EDIT_INTERVAL_S = 1.0
NO_MENTIONS = discord.AllowedMentions.none()
POST_ATTEMPTS = 4  # on top of discord.py's own five tries for 5xx answers
POST_BACKOFF_S = 2.0


def token_expired(error: discord.HTTPException) -> bool:
    return error.status == 401 or error.code == 50027


class Delivery:
    def __init__(self, client: discord.Client, service: Service):
        self.client = client
        self.service = service
        self._background = Background("delivering a job")

    # -- from an interaction ------------------------------------------------------------------

    async def draw(self, interaction: discord.Interaction, request: DrawRequest) -> None:
        """Admit the request and answer at once: a refusal only the caller sees, or the queue message."""
        admission = asyncio.ensure_future(self.service.submit(request))
        done, _ = await asyncio.wait({admission}, timeout=ACK_BUDGET_S)
        if not done:
            await interaction.response.defer(thinking=True)
        try:
            ticket = await admission
        except Refused as refusal:
            text = refusal.sentence(messages.when)
            if interaction.response.is_done():
                # Deferred (publicly) before the answer was known: say it there.
                await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
            else:
                await say_privately(interaction, text)
            return
        text = self._status(ticket, None)
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as error:
            # The job is admitted; losing the interaction must not lose the image: post it in the channel.
            log.warning("job %s: could not answer the interaction (%s); it will be posted in the channel",
                        ticket.job_id, error)
            self.spawn(self.deliver_to_channel(ticket, request.user_id, ticket.channel_id))
            return
        self.spawn(self._follow(interaction, ticket, request.user_id))

    async def _follow(self, interaction: discord.Interaction, ticket: Ticket, user_id: int) -> None:
        """Show the queue position, then the steps, editing at most once a second; then the result."""
        started = time.monotonic()
        latest: list[Progress | None] = [None]
        ticket.progress_listeners.append(lambda progress: latest.__setitem__(0, progress))
        result_task = asyncio.ensure_future(ticket.result())
        token_ok = True
        shown = self._status(ticket, None)
        while not result_task.done():
            await asyncio.wait({result_task}, timeout=EDIT_INTERVAL_S)
            if result_task.done() or not token_ok or time.monotonic() - started > TOKEN_LIFE_S:
                continue
            text = self._status(ticket, latest[0])
            if text == shown:
                continue
            try:
                await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
                shown = text
            except discord.HTTPException as error:
                token_ok = not token_expired(error)
                log.warning("progress edit for job %s failed: %s", ticket.job_id, error)
        await self._finish(ticket, result_task, user_id, interaction if token_ok else None, started)

    async def _finish(self, ticket: Ticket, result_task: asyncio.Future, user_id: int,
                      interaction: discord.Interaction | None, started: float) -> None:
        try:
            result = result_task.result()
        except ShuttingDown:
            await self._edit_or_post(interaction, ticket, user_id, messages.STOPPED, started)
            return
        except RenderFailed as failure:
            await self._edit_or_post(interaction, ticket, user_id, messages.failed(failure.reason), started)
            return
        await self.post_result(result, ticket.size, user_id, ticket.channel_id,
                               interaction if time.monotonic() - started < TOKEN_LIFE_S else None)

    async def _edit_or_post(self, interaction, ticket: Ticket, user_id: int, text: str, started: float) -> None:
        if interaction is not None and time.monotonic() - started < TOKEN_LIFE_S:
            try:
                await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
                return
            except discord.HTTPException as error:
                if not token_expired(error):
                    raise
        if ticket.channel_id:
            await self.client.get_partial_messageable(ticket.channel_id).send(
                f"<@{user_id}> {text}", allowed_mentions=discord.AllowedMentions(users=[discord.Object(user_id)]))

    # -- posting -------------------------------------------------------------------------------

    async def post_result(self, result: Result, size: str, user_id: int, channel_id: int | None,
                          interaction: discord.Interaction | None) -> discord.Message:
        """Edit the interaction's message into the image; if the token expired, or the webhook keeps
        failing after discord.py's own retries, post it in the channel with the bot token instead."""
        content = messages.caption(result, size, user_id)
        message = None
        if interaction is not None:
            try:
                message = await interaction.edit_original_response(
                    content=content, attachments=[_file(result)], view=result_view(result.job_id),
                    allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as error:
                why = "its token expired" if token_expired(error) else f"the edit failed ({error.status})"
                log.warning("job %s: %s; posting it in the channel instead", result.job_id, why)
        if message is None:
            message = await self._send_with_retries(result, content, user_id, channel_id)
        await self.service.store.update(result.job_id, message_id=message.id)
        log.info("job %s posted as message %s", result.job_id, message.id)
        return message

    async def _send_with_retries(self, result: Result, content: str, user_id: int,
                                 channel_id: int | None) -> discord.Message:
        if channel_id is None:
            raise RuntimeError(f"job {result.job_id} has no channel to be posted in")
        channel = self.client.get_partial_messageable(channel_id)
        mentions = discord.AllowedMentions(users=[discord.Object(user_id)], everyone=False, roles=False)
        for attempt in range(POST_ATTEMPTS):
            try:
                return await channel.send(content, file=_file(result), view=result_view(result.job_id),
                                          allowed_mentions=mentions)
            except (discord.DiscordServerError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                if attempt == POST_ATTEMPTS - 1:
                    raise
                delay = POST_BACKOFF_S * 2**attempt
                log.warning("job %s: posting failed (%s); trying again in %.0f s", result.job_id, error, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def deliver_to_channel(self, ticket: Ticket, user_id: int, channel_id: int) -> None:
        """For jobs resumed after a restart: no interaction any more, so post with the bot token."""
        try:
            result = await ticket.result()
        except ShuttingDown:
            return
        except RenderFailed as failure:
            await self.client.get_partial_messageable(channel_id).send(
                f"<@{user_id}> {messages.failed(failure.reason)}",
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(user_id)]))
            return
        await self.post_result(result, ticket.size, user_id, channel_id, None)

    # -- bookkeeping -------------------------------------------------------------------------

    def _status(self, ticket: Ticket, progress: Progress | None) -> str:
        position = ticket.position()
        if position == 0 and progress is not None:
            return messages.drawing(progress)
        return messages.queued(position, ticket.eta(), not self.service.executor.ready.is_set())

    def spawn(self, coro) -> asyncio.Task:
        return self._background.spawn(coro)

    async def wait(self, timeout: float) -> None:
        """Let every delivery in flight finish (at shutdown: the running job gets posted)."""
        await self._background.wait(timeout)


def _file(result: Result) -> discord.File:
    return discord.File(io.BytesIO(result.png), filename=f"zbot-{result.seed}.png")

