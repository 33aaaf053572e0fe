"""`zbot run`: log in, resume what a previous run left unfinished, serve until SIGTERM or Ctrl-C.

Stopping: no new jobs are taken, the running job finishes and is posted, queued jobs stay queued in
the database and are drawn and posted into their channels on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import aiohttp
import discord

from ..app import Core, open_core
from ..config import Settings
from ..http_api import bot_health, build_app, start_http
from ..jobs import RenderSpec
from .client import ZBot, point_at
from .messages import quote_prompt

log = logging.getLogger(__name__)

POST_TIMEOUT_S = 60.0


class StartError(Exception):
    """Why the bot could not start, in one line."""


async def run_bot(settings: Settings) -> int:
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise StartError("ZBOT_DISCORD_TOKEN is not set: create a bot in Discord's Developer Portal "
                         "(see the README) and put its token in .env")
    point_at(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with open_core(settings) as core:
        bot = ZBot(settings, core.service)
        http = None
        try:
            if settings.http_port:
                # Up while the model loads and Discord connects: /healthz says which is still missing.
                app = build_app(core, health=bot_health(core, bot), metrics=core.metrics)
                try:
                    http = await start_http(app, settings.http_host, settings.http_port)
                except OSError as exc:
                    raise StartError(f"could not listen on {settings.http_host}:{settings.http_port} for HTTP "
                                     f"({exc.strerror or exc}); set ZBOT_HTTP_PORT to a free port, or 0 to turn "
                                     "the HTTP server off") from None
            try:
                await bot.login(settings.discord_token.get_secret_value())
            except discord.LoginFailure:
                raise StartError("Discord rejected ZBOT_DISCORD_TOKEN (401 Unauthorized): copy the token again "
                                 "from the Developer Portal's Bot page") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise StartError(f"could not reach Discord at {settings.discord_api_url} "
                                 f"({type(exc).__name__})") from None
            await resume_unfinished(core, bot)
            return await serve(core, bot, stop)
        finally:
            await core.executor.shutdown()
            await bot.delivery.wait(POST_TIMEOUT_S)
            if http is not None:
                await http.cleanup()
            await bot.close()


async def serve(core: Core, bot: ZBot, stop: asyncio.Event) -> int:
    connection = asyncio.create_task(bot.connect(reconnect=True), name="gateway")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    loading = asyncio.create_task(core.executor.wait_ready(), name="model")
    pending = {connection, stopping, loading}
    while True:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if loading in done:
            if loading.exception() is not None:
                raise StartError(f"the model failed to load: {loading.exception()}")
            log.info("the model is loaded and warm; ready to draw")
            if pending:
                continue
        if stopping in done:
            log.info("stopping: finishing the running job; queued jobs stay queued for the next start")
            break
        if connection in done:
            connection.result()  # raises what ended the connection (e.g. the token was revoked)
            break
    for task in pending:
        task.cancel()
    return 0


async def resume_unfinished(core: Core, bot: ZBot) -> None:
    """Jobs a previous run left queued, running (a crash, kill -9) or drawn but not yet posted: draw
    and post them into their channels, oldest first; tell the users of jobs too old to draw now."""
    store, settings = core.store, core.settings
    await store.requeue_running()
    now = time.time()
    jobs = sorted(await store.unfinished() + await store.unposted(), key=lambda job: job.id)
    for job in jobs:
        if job.channel_id is None or job.width is None or now - job.created_at > settings.recovery_max_age:
            if job.status == "done":
                continue  # drawn long ago; nobody is waiting for it any more
            await store.mark_failed(job.id, now, "lost when the bot restarted")
            if job.channel_id is not None:
                bot.delivery.spawn(_tell_lost(bot, job.channel_id, job.user_id, job.prompt))
            log.info("job %s is too old to resume after a restart; marked failed and its user told", job.id)
            continue
        spec = RenderSpec(job.id, job.prompt, job.seed, job.width, job.height, job.steps)
        ticket = core.service.enqueue(spec, job.size or f"{job.width}x{job.height}", job.channel_id,
                                      user_id=job.user_id, source=job.source)
        bot.delivery.spawn(bot.delivery.deliver_to_channel(ticket, job.user_id, job.channel_id))
        log.info("resuming job %s from a previous run (%s)", job.id, job.status)


async def _tell_lost(bot: ZBot, channel_id: int, user_id: int, prompt: str) -> None:
    text = (f"<@{user_id}> sorry, your image for “{quote_prompt(prompt, 200)}” was lost when the bot "
            "restarted; please /draw it again. It did not count against your limits.")
    await bot.get_partial_messageable(channel_id).send(
        text, allowed_mentions=discord.AllowedMentions(users=[discord.Object(user_id)]))
