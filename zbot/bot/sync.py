"""Registering the commands with Discord where the settings say, and nowhere else.

With ZBOT_GUILD_IDS the commands are registered in those servers (they show at once) and the global
registration is emptied; without, they are registered globally. Servers synced on an earlier start
and no longer listed are emptied too (they are remembered in the database), so nobody sees a command
twice, or a command of a configuration that is gone.
"""

from __future__ import annotations

import json
import logging

import discord
from discord import app_commands

from ..store import Store
from .posting import DISCORD_ERRORS, describe

log = logging.getLogger(__name__)

STATE_KEY = "synced_guild_ids"


async def sync_commands(tree: app_commands.CommandTree, store: Store, guild_ids: list[int]) -> None:
    before = set(json.loads(await store.state(STATE_KEY) or "[]"))
    if guild_ids:
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)
        # Registered in the listed servers: a global registration left by an earlier configuration would
        # show every command twice. (Interactions from other servers are refused before any lookup.)
        tree.clear_commands(guild=None)
        await tree.sync()
        log.info("commands synced to %d server(s)", len(guild_ids))
    else:
        await tree.sync()
        log.info("commands synced globally (Discord may take up to an hour to show them everywhere)")
    for guild_id in sorted(before - set(guild_ids)):
        try:
            await tree.sync(guild=discord.Object(guild_id))  # nothing registered for it here: empties it
            log.info("removed the commands from server %s, which ZBOT_GUILD_IDS no longer lists", guild_id)
        except DISCORD_ERRORS as error:  # the bot may have left that server
            log.warning("could not remove the commands from server %s (%s)", guild_id, describe(error))
    await store.set_state(STATE_KEY, json.dumps(sorted(guild_ids)))
