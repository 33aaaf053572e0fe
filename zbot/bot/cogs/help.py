"""/help: what zbot does, this server's limits, sizes and styles, how Report works and the commands, in
the member's language, privately."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot import access
from zbot.bot.errors import say_privately
from zbot.bot.i18n import tr
from zbot.catalogue import items, text
from zbot.config import Settings, Window
from zbot.core.limits import rate
from zbot.core.service import Service


class Help(commands.Cog):
    def __init__(self, service: Service):
        self.service = service

    @app_commands.command(name="help", description="What zbot does, and how to use it here")
    async def help(self, interaction: discord.Interaction) -> None:
        settings = self.service.settings_for(interaction.guild_id)
        _, windows = access.tier(settings, interaction)  # the member's role tier, where one applies
        await say_privately(interaction, help_text(settings, windows, interaction.locale))


def help_text(settings: Settings, windows: tuple[Window, ...], locale) -> str:
    said = [text("help.intro")]
    if windows:
        said.append(text("help.limits", windows=items(rate(w) for w in windows),
                         pending=settings.max_pending_per_user))
    else:
        said.append(text("help.no_limits", pending=settings.max_pending_per_user))
    said.append(text("help.sizes", sizes=items(settings.size_table), most=settings.max_count))
    if settings.styles:
        said.append(text("help.styles", styles=items(settings.styles)))
    said += [text("help.buttons"), text("help.report"), text("help.commands"), text("help.privacy")]
    return "\n\n".join(tr(locale, line) for line in said)
