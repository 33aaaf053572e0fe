"""After a restart, on Discord: post what `Service.recover` hands over (kept images, users to tell, jobs
queued again) into the jobs' channels, and take over stopped zbots' jobs every minute while running."""

from __future__ import annotations

import asyncio
import logging

from zbot.bot.client import ZBot
from zbot.bot.messages import failed, lost
from zbot.bot.posting import Destination
from zbot.core.jobs import RenderFailed
from zbot.core.recovery import LOST, Kept

log = logging.getLogger(__name__)

ADOPT_EVERY_S = 60.0  # how often to look for jobs of other zbots on this database that have stopped


async def resume_unfinished(bot: ZBot) -> None:
    """Take over the jobs that stopped or crashed processes left unfinished: post the images already
    drawn, draw and post the rest into their channels, and tell the users of jobs that won't be drawn.
    Jobs of a zbot still running on the same database stay its own."""
    recovery = await bot.service.recover()
    poster, delivery = bot.drawing.poster, bot.delivery
    for kept in recovery.kept:
        delivery.spawn(_post_kept(bot, kept))
    for notice in recovery.notices:
        job = notice.job
        text = lost(job.prompt) if notice.kind == LOST else failed(notice.reason)
        delivery.spawn(poster.say(_destination(bot, job.user_id, job.channel_id), text))
    for ticket in recovery.resumed:
        delivery.spawn(delivery.deliver_to_channel(ticket, ticket.user_id, ticket.channel_id))


async def adopt_periodically(bot: ZBot, every_s: float = ADOPT_EVERY_S) -> None:
    """Another zbot on the same database may stop (or crash) while this one runs: take its jobs over
    then, not only at this one's next start; and the service's housekeeping."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await resume_unfinished(bot)
        except Exception:  # the next round tries again
            log.exception("taking over the jobs of stopped processes failed")
        await bot.service.housekeeping()


async def _post_kept(bot: ZBot, kept: Kept) -> None:
    where = _destination(bot, kept.job.user_id, kept.job.channel_id)
    try:
        result = await bot.service.kept_result(kept)
    except RenderFailed as failure:
        await bot.drawing.poster.say(where, failed(failure.reason))
        return
    if result is not None:  # None: the checker failed to load; this start ends, the next one posts it
        await bot.drawing.poster.post(result, kept.size, where)


def _destination(bot: ZBot, user_id: int, channel_id: int | None) -> Destination:
    return Destination(user_id, channel_id, guild_locale=bot.drawing.poster.guild_locale(channel_id))
