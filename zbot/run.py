"""`zbot run`, the composition root of the running bot: the core, the Discord bot and the HTTP server
wired together. Log in, take over what a previous run left unfinished, serve until SIGTERM or Ctrl-C.

Stopping: no new requests are taken (Discord's and HTTP's are told "restarting"), the running job
finishes and is posted, queued jobs stay queued in the database and are drawn and posted into their
channels on the next start; an image drawn but not yet posted is posted then, not drawn again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
import discord
import yarl

from zbot.app import SETTLE_TIMEOUT_S, Core, StartError, check_before_start, open_core
from zbot.bot.client import ZBot, point_at
from zbot.bot.recovery import adopt_periodically, resume_unfinished
from zbot.config import Settings
from zbot.engine.model_files import ModelNotFound
from zbot.engine.safety import SafetyUnavailable
from zbot.http.api import STOP_S as HTTP_STOP_S
from zbot.http.api import Health, build_app, start_http

log = logging.getLogger(__name__)

SHUTDOWN_RENDER_S = 120.0  # how long the running render may take to finish at shutdown
POST_TIMEOUT_S = 30.0  # then how long posting what was drawn may take (what isn't posted is, at the next start)
CLOSE_S = 5.0  # not budgeted, left for the rest: the last PNG's encoding, the gateway, the database, the exit


def worst_shutdown_s() -> float:
    """The longest `zbot run` may take from SIGTERM to its exit, adding up the budgets of run_bot's
    shutdown and open_core's: it must fit in docker-compose.yml's stop_grace_period, or the container is
    killed while it posts the last image (tests/test_shutdown_budget.py)."""
    # service.drain waits for the finished jobs' bookkeeping, then for retried writes: SETTLE_TIMEOUT_S each.
    return SHUTDOWN_RENDER_S + POST_TIMEOUT_S + HTTP_STOP_S + 2 * SETTLE_TIMEOUT_S + CLOSE_S


async def run_bot(settings: Settings) -> int:
    """Start in the order that answers soonest: the settings (read before this is called), the paths, the
    token, then the gateway, with torch, the safety check and the model loading beside it on the worker's
    thread (requests meanwhile are queued and told "warming up")."""
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise StartError("ZBOT_DISCORD_TOKEN is not set: create a bot in Discord's Developer Portal "
                         "(see the README) and put its token in .env")
    check_before_start(settings)
    point_at(settings)
    await check_token(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_on_signals() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    stop_on_signals()
    async with open_core(settings, checker_with_model=True) as core:
        # Again: ray.init (ZBOT_EXECUTOR=ray) puts in its own SIGTERM handler, which exits with status 15
        # at once, with no shutdown; ours finishes the running job and exits 0.
        stop_on_signals()
        bot = ZBot(settings, core.service)
        http = None
        try:
            if settings.http_port:
                # Up while the model loads and Discord connects: /healthz says which is still missing.
                health = bot_health(core, bot)
                app = build_app(core.service, health=health, metrics=core.metrics)
                core.metrics.track_health(health)  # the same checks as gauges, for the alert rules
                try:
                    http = await start_http(app, settings.http_host, settings.http_port)
                except OSError as exc:
                    raise StartError(f"could not listen on {settings.http_host}:{settings.http_port} for HTTP "
                                     f"({exc.strerror or exc}); set ZBOT_HTTP_PORT to a free port, or 0 to turn "
                                     "the HTTP server off") from None
            async with token_errors(settings):  # revoked since check_token, say
                await bot.login(settings.discord_token.get_secret_value())
            await resume_unfinished(bot)
            return await serve(core, bot, stop)
        finally:
            # One shutdown, in order: take nothing new, let the running render finish, post what was
            # drawn, then close the doors (open_core's own shutdown finds it done).
            core.service.close()
            await core.executor.shutdown(SHUTDOWN_RENDER_S)
            await bot.delivery.close(POST_TIMEOUT_S)
            if http is not None:
                await http.cleanup()
            await bot.close()


async def check_token(settings: Settings) -> None:
    """Ask Discord who the token belongs to (GET /users/@me): a bad one ends the start in one line,
    before the database, the model or the gateway."""
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with token_errors(settings):
            await http.static_login(settings.discord_token.get_secret_value().strip())
    finally:
        await http.close()


@contextlib.asynccontextmanager
async def token_errors(settings: Settings) -> AsyncIterator[None]:
    try:
        yield
    except discord.LoginFailure:
        raise StartError("Discord rejected ZBOT_DISCORD_TOKEN (401 Unauthorized): copy the token again "
                         "from the Developer Portal's Bot page") from None
    except (aiohttp.ClientError, OSError) as exc:
        where = yarl.URL(settings.discord_api_url).with_user(None)  # a proxy's password stays out
        raise StartError(f"could not reach Discord at {where} ({type(exc).__name__})") from None


async def serve(core: Core, bot: ZBot, stop: asyncio.Event) -> int:
    connection = asyncio.create_task(bot.connect(reconnect=True), name="gateway")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    loading = asyncio.create_task(core.executor.wait_ready(), name="model")
    adopting = asyncio.create_task(adopt_periodically(bot), name="adopt")
    pending = {connection, stopping, loading}
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if loading in done:
                error = loading.exception()
                if isinstance(error, (ModelNotFound, SafetyUnavailable)):  # already one line that says what to do
                    raise StartError(str(error))
                if error is not None:
                    raise StartError(f"the model failed to load: {error}")
                log.info("the model is loaded and warm; ready to draw")
                if pending:
                    continue
            if stopping in done:
                log.info("stopping: finishing the running job; queued jobs stay queued for the next start")
                return 0
            if connection in done:
                connection.result()  # raises what ended the connection (e.g. the token was revoked)
                return 0
    finally:
        for task in (*pending, adopting):
            task.cancel()


def bot_health(core: Core, bot: ZBot) -> Health:
    """/healthz's checks for `zbot run`: the model is loaded and the Discord gateway is connected."""

    def health() -> dict[str, bool]:
        executor = core.executor
        ws = getattr(bot, "ws", None)
        return {
            "model": executor.ready.is_set() and executor.load_error is None,
            "gateway": bot.is_ready() and not bot.is_closed() and ws is not None and bool(ws.open),
            "accepting": not core.service.closing,  # false while shutting down
            "database": core.store.write_failure is None,  # false while writes fail (a full disk)
            "safety": core.inspector.checker.name if core.inspector.active else "off",
        }

    return health
