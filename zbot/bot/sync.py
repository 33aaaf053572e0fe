"""Registering the commands with Discord where the settings say, and nowhere else.

With ZBOT_GUILD_IDS the commands are registered in those servers (they show at once) and the global
registration is emptied; without, they are registered globally. Servers synced on an earlier start
and no longer listed are emptied too (they are remembered in the database), so nobody sees a command
twice, or a command of a configuration that is gone.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from zbot.bot.discord_errors import DISCORD_ERRORS, describe
from zbot.core.service import Service

log = logging.getLogger(__name__)


async def sync_commands(tree: app_commands.CommandTree, service: Service, guild_ids: list[int]) -> None:
    """Register the commands; a failure is logged, not raised: the commands registered by an earlier
    start still work, and the bot must start to post what it has kept."""
    before = set(await service.registered_servers())
    if guild_ids:
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            tree.copy_global_to(guild=guild)
            await _sync(tree, guild, f"server {guild_id} (is the bot still in it?)")
        # Registered in the listed servers: a global registration left by an earlier configuration would
        # show every command twice. (Interactions from other servers are refused before any lookup.)
        tree.clear_commands(guild=None)
        await _sync(tree, None, "the global registration, to empty it")
        log.info("commands synced to %d server(s)", len(guild_ids))
    elif await _sync(tree, None, "every server"):
        log.info("commands synced globally (Discord may take up to an hour to show them everywhere)")
    for guild_id in sorted(before - set(guild_ids)):
        # Nothing is registered for that server here: syncing it empties it.
        if await _sync(tree, discord.Object(guild_id), f"server {guild_id}, to empty it"):
            log.info("removed the commands from server %s, which ZBOT_GUILD_IDS no longer lists", guild_id)
    await service.set_registered_servers(guild_ids)


async def _sync(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None, what: str) -> bool:
    try:
        await tree.sync(guild=guild)
        return True
    except DISCORD_ERRORS as error:
        log.warning("could not register the commands for %s (%s)", what, describe(error))
        return False
