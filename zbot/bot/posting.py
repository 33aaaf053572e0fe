"""Putting a drawn image on Discord, and keeping at it until it is there.

The image goes where its user is looking: into the interaction's own message while its token lives,
else into the channel with the bot token. Whatever Discord or the network answers, the image is kept
(zbot.core.lifecycle, "drawn") and the post is tried again with backoff, in the background, until it
succeeds; only then is the job "posted". Network trouble and Discord's 5xx are waited out however long
they last (a shutdown leaves the image kept, and the next start posts it). Only a job that Discord
refuses for longer than its give-up time (a channel the bot lost access to) is marked failed, and its
user told if that is possible.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import discord
from PIL import Image

from zbot.bot import messages
from zbot.bot.discord_errors import (
    DISCORD_ERRORS,
    NETWORK_ERRORS,
    describe,
    expired,
    invalid_body,
    refused_for_good,
)
from zbot.bot.i18n import localize_view, tr
from zbot.core.grid import compose
from zbot.core.jobs import Result
from zbot.core.service import Service

log = logging.getLogger(__name__)

TOKEN_LIFE_S = 15 * 60 - 30  # stop using an interaction's token a little before Discord does
EDIT_TRIES = 3  # a failing edit of the interaction's message, before the channel is tried instead
BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 300.0
MIN_GIVE_UP_S = 15 * 60
LOOKUP_TRIES = 5  # looking up a channel through network trouble, before deciding it can't be told

NO_MENTIONS = discord.AllowedMentions.none()
UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's attachment limit where the interaction doesn't say (a channel post)


def mention(user_id: int) -> discord.AllowedMentions:
    """Ping the requester, and nobody else, whatever the text holds."""
    return discord.AllowedMentions(users=[discord.Object(user_id)], everyone=False, roles=False, replied_user=False)


@dataclass
class Destination:
    """Where a job's messages go: the interaction's own message while `interaction` is usable, else the
    channel. `started` is when the interaction arrived (time.monotonic), for the token's life."""

    user_id: int
    channel_id: int | None
    interaction: discord.Interaction | None = None
    started: float = 0.0
    guild_locale: str | None = None  # the server's language, for what is posted in its channel

    def __post_init__(self) -> None:
        if self.interaction is not None and self.guild_locale is None:
            self.guild_locale = getattr(self.interaction, "guild_locale", None)

    def locale(self):
        """Who reads what is said next: the user in the interaction's message, else the whole channel."""
        return self.interaction.locale if self.interaction_usable() else self.guild_locale

    def interaction_usable(self) -> bool:
        return self.interaction is not None and time.monotonic() - self.started < TOKEN_LIFE_S

    def drop_interaction(self) -> None:
        self.interaction = None


class Poster:
    def __init__(self, client: discord.Client, service: Service,
                 view_for: Callable[[Result, frozenset[int]], discord.ui.View], *,
                 give_up_s: float):
        self.client = client
        self.service = service
        self.view_for = view_for
        self.give_up_s = max(MIN_GIVE_UP_S, give_up_s)
        self.backoff_s = BACKOFF_FIRST_S  # the first wait before trying again; it doubles up to BACKOFF_MAX_S

    async def post(self, result: Result, size: str, where: Destination) -> discord.Message | None:
        """Post the image and record it as posted. Network trouble and Discord's 5xx are tried again
        until the post succeeds (at shutdown the image stays kept for the next start); Discord refusing
        it for good (no access to the channel, too large) is tried again until the give-up time.

        An image the safety check flagged is posted only in an age-restricted channel (as a spoiler with
        ZBOT_SAFETY_NSFW_CHANNELS=spoiler); elsewhere it is withheld and its requester told privately."""
        origin, guild_id = await self._origin(result.job_id)
        # In a grid, the withheld images are grey tiles and can't be picked; all of them: nothing posted.
        shown = await self.service.showing([picture.flagged for picture in result.pictures], guild_id,
                                           flagged_shown=lambda: self.age_restricted(where.channel_id))
        if shown.nothing:
            await self._withhold(result, where)
            return None
        spoiler, withheld = shown.spoiler, shown.withheld
        upload, kind = result.png, "png"
        if result.count > 1:  # composed off the event loop
            upload = await asyncio.to_thread(compose, [picture.png for picture in result.pictures], withheld)
        limit = getattr(where.interaction, "filesize_limit", None) or UPLOAD_LIMIT
        if len(upload) > limit:  # a detailed upscale can pass Discord's 10 MiB as PNG; as JPEG it is ~2 MB
            upload, kind = await asyncio.to_thread(as_jpeg, upload), "jpg"
        view = localize_view(self.view_for(result, withheld), where.locale())
        deadline = time.monotonic() + self.give_up_s
        short = False  # after Discord refused the caption: the one-line caption, which always fits
        delay = self.backoff_s
        edit_failures = 0
        while True:
            via = "interaction" if where.interaction_usable() else "channel"
            if via == "channel" and where.channel_id is None:
                await self._give_up(result, where, "it has no channel to be posted in")
                return None
            try:
                attachment = image_file(result, upload, kind, spoiler)
                if via == "interaction":
                    message = await self._edit(result, size, where, short, attachment, view, origin)
                else:
                    message = await self._send(result, size, where, short, attachment, view, origin)
                break
            except Exception as error:  # noqa: BLE001 - every failure is a reason to try again, not to lose it
                if not isinstance(error, DISCORD_ERRORS):
                    log.exception("job %s: posting failed unexpectedly; trying again", result.job_id)
                if invalid_body(error) and not short:
                    log.warning("job %s: Discord refused the caption (%s); posting a short one", result.job_id, error)
                    short = True
                    continue
                if via == "interaction":
                    edit_failures += 1
                    if not isinstance(error, NETWORK_ERRORS) or edit_failures >= EDIT_TRIES:
                        message = await self._already_edited(result, where, error)
                        if message is not None:
                            break
                        log.warning("job %s: %s; posting it in the channel instead", result.job_id,
                                    "its token expired" if expired(error) else f"the edit failed ({describe(error)})")
                        where.drop_interaction()
                        continue
                elif refused_for_good(error) and time.monotonic() + delay > deadline:
                    await self._give_up(result, where, f"Discord refused it ({describe(error)})")
                    return None
                log.warning("job %s: posting failed (%s); trying again in %.0f s", result.job_id,
                            describe(error), delay)
                await asyncio.sleep(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)
        # The full-size images stay kept: picks, variations and upscales start from them.
        await self.service.delivered(result.job_id, message.id)
        log.info("job %s posted as message %s (%s)", result.job_id, message.id, via)
        return message

    async def _already_edited(self, result: Result, where: Destination,
                              error: BaseException) -> discord.Message | None:
        """After an edit failed in a way that may hide its success (a dropped answer, a 5xx from a proxy
        that passed it on): the interaction's message, if it already shows this image."""
        if expired(error) or isinstance(error, discord.NotFound):
            return None
        try:
            message = await where.interaction.original_response()
        except Exception:  # noqa: BLE001 - only a check: on any failure, post in the channel
            return None
        if any(attachment.filename.rsplit(".", 1)[0].endswith(image_name(result))
               for attachment in message.attachments):
            log.info("job %s: the failed edit had gone through after all", result.job_id)
            return message
        return None

    async def _origin(self, job_id: int) -> tuple[str, int | None]:
        """("variation of <link to the parent's message>", the job's server): "" for a draw, or when the
        database can't say right now (the image goes out anyway)."""
        try:
            job = await self.service.job(job_id)
            if job is None or job.parent_id is None:
                return "", job.guild_id if job else None
            parent = await self.service.job(job.parent_id)
        except sqlite3.Error as error:
            log.warning("job %s: could not look up its parent (%s); posted without the link", job_id, error)
            return "", None
        link = parent and messages.message_link(parent.guild_id, parent.channel_id, parent.message_id)
        return messages.origin(job.operation, link), job.guild_id

    async def _edit(self, result: Result, size: str, where: Destination, short: bool, attachment: discord.File,
                    view: discord.ui.View, origin: str = "") -> discord.Message:
        content = messages.short_caption(result, size, where.user_id, where.locale()) if short else messages.caption(
            result, size, where.user_id, origin=origin, locale=where.locale())
        return await where.interaction.edit_original_response(
            content=content, attachments=[attachment], view=view, allowed_mentions=NO_MENTIONS)

    async def _send(self, result: Result, size: str, where: Destination, short: bool, attachment: discord.File,
                    view: discord.ui.View, origin: str = "") -> discord.Message:
        if where.channel_id is None:
            raise RuntimeError(f"job {result.job_id} has no channel to be posted in")
        prefix = f"<@{where.user_id}> "
        if short:
            content = prefix + messages.short_caption(result, size, where.user_id, where.locale())
        else:
            content = prefix + messages.caption(result, size, where.user_id, origin=origin, locale=where.locale(),
                                                limit=messages.CONTENT_LIMIT - messages.length(prefix))
        # The nonce makes Discord answer a repeated post (its first answer was lost) with the message the
        # first one made, instead of making a second.
        return await self.client.get_partial_messageable(where.channel_id).send(
            content, file=attachment, view=view,
            allowed_mentions=mention(where.user_id), suppress_embeds=True, nonce=f"zbot-{result.job_id}")

    # -- flagged images ------------------------------------------------------------------------------

    def guild_locale(self, channel_id: int | None) -> str | None:
        """The language of the server a channel is in (its Community "primary language"), if cached."""
        channel = self.client.get_channel(channel_id) if channel_id is not None else None
        guild = getattr(channel, "guild", None)
        return getattr(getattr(guild, "preferred_locale", None), "value", None)

    async def age_restricted(self, channel_id: int | None) -> bool:
        """Whether the channel is age-restricted (Discord's NSFW flag; a thread takes its parent's). When
        Discord says it can't tell (no access, no such channel) or answers what isn't a channel: no, and
        the image is withheld rather than shown where it may not be. Network trouble is waited out."""
        if channel_id is None:
            return False
        try:
            channel = await self._channel(channel_id)
            parent_id = getattr(channel, "parent_id", None)
            if isinstance(channel, discord.Thread) and channel.parent is None and parent_id:
                channel = await self._channel(parent_id)  # not in the cache (before the gateway is up)
        except Exception as error:  # noqa: BLE001 - the safe answer for whatever went wrong
            log.warning("could not tell whether channel %s is age-restricted (%s); treating it as not",
                        channel_id, describe(error))
            return False
        is_nsfw = getattr(channel, "is_nsfw", None)
        return bool(is_nsfw()) if callable(is_nsfw) else False

    async def _channel(self, channel_id: int):
        delay = self.backoff_s
        for attempt in range(LOOKUP_TRIES):
            channel = self.client.get_channel(channel_id)
            if channel is not None:
                return channel
            try:
                return await self.client.fetch_channel(channel_id)
            except (discord.DiscordServerError, *NETWORK_ERRORS) as error:
                if attempt == LOOKUP_TRIES - 1:
                    raise
                log.warning("looking up channel %s failed (%s); trying again in %.0f s", channel_id,
                            describe(error), delay)
                await asyncio.sleep(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)
        raise AssertionError("unreachable")

    async def _withhold(self, result: Result, where: Destination) -> None:
        """Not posted: recorded as blocked (it still counts), and its requester told where only they see
        it: privately in the interaction, else in a direct message, else in a neutral line in the channel."""
        await self.service.withheld(result.job_id)  # it still counts
        log.info("job %s withheld: the safety check flagged it (score %.2f) outside an age-restricted channel",
                 result.job_id, result.verdict.score)
        if where.interaction_usable():
            interaction = where.interaction
            # The public answer ("Drawing…") first becomes a neutral line, so that a follow-up can't turn
            # into that answer (it would, were it still a bare "thinking…"), and goes once the user knows.
            try:
                await interaction.edit_original_response(content=messages.NOT_POSTED, attachments=[], view=None,
                                                         allowed_mentions=NO_MENTIONS)
            except DISCORD_ERRORS as error:
                log.info("job %s: could not edit the public answer (%s)", result.job_id, describe(error))
            try:
                await interaction.followup.send(messages.WITHHELD, ephemeral=True)
            except DISCORD_ERRORS as error:
                log.warning("job %s: could not tell its user privately (%s)", result.job_id, describe(error))
            else:
                try:
                    await interaction.delete_original_response()
                except DISCORD_ERRORS:
                    pass  # the neutral line stays
                return
        try:
            user = self.client.get_user(where.user_id) or await self.client.fetch_user(where.user_id)
            await user.send(messages.WITHHELD)
            return
        except DISCORD_ERRORS as error:
            log.info("job %s: no direct message to user %s (%s)", result.job_id, where.user_id, describe(error))
        where.drop_interaction()
        await self.say(where, messages.WITHHELD_PUBLIC)

    async def _give_up(self, result: Result, where: Destination, why: str) -> None:
        log.error("job %s: giving up on posting it: %s", result.job_id, why)
        await self.service.unposted(result.job_id)
        await self.say(where, messages.UNPOSTABLE)

    async def say(self, where: Destination, text: str, *, tries: int = 3, clear_view: bool = False) -> None:
        """A short text for the job's user (a failure, a restart): in the interaction's message if it is
        usable, else in the channel with a mention; a few tries, then logged."""
        english = text
        for attempt in range(tries):
            text = tr(where.locale(), english)  # the user's language, or the server's in its channel
            try:
                if where.interaction_usable():
                    await where.interaction.edit_original_response(
                        content=text, allowed_mentions=NO_MENTIONS, **({"view": None} if clear_view else {}))
                elif where.channel_id is not None:
                    await self.client.get_partial_messageable(where.channel_id).send(
                        f"<@{where.user_id}> {text}", allowed_mentions=mention(where.user_id), suppress_embeds=True)
                return
            except DISCORD_ERRORS as error:
                if isinstance(error, discord.HTTPException) and where.interaction_usable():
                    where.drop_interaction()  # the token is no good: the channel next
                if attempt == tries - 1:
                    log.warning("could not tell user %s %r (%s)", where.user_id, text[:60], describe(error))
                    return
                await asyncio.sleep(self.backoff_s * 2**attempt)


def image_name(result: Result) -> str:
    """The attachment's name without its extension."""
    return f"zbot-{result.seed}" if result.count == 1 else f"zbot-{result.seed}-grid"


def image_file(result: Result, data: bytes, kind: str = "png", spoiler: bool = False) -> discord.File:
    """The image (or its grid) as an attachment."""
    return discord.File(io.BytesIO(data), filename=f"{image_name(result)}.{kind}", spoiler=spoiler)


def as_jpeg(png: bytes, quality: int = 92) -> bytes:
    """A PNG too large to upload, as a JPEG of high quality (blocking: call it in a thread)."""
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
