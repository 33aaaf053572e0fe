"""What people used and have left: /quota for everyone, /stats for admins (bot owners see every
server, server managers their own)."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import date

import discord
from discord import app_commands
from discord.ext import commands

from ..chart import per_day_chart
from ..config import Settings
from ..jobs import BadInput
from ..service import Service
from ..usage import usage_report
from . import access, messages
from .i18n import t, tr
from .errors import say_privately


class Accounts(commands.Cog):
    def __init__(self, settings: Settings, service: Service):
        self.settings = settings
        self.service = service

    @app_commands.command(name="quota", description="How many images you may still draw, and your pending ones")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        settings = self.service.settings_for(interaction.guild_id)
        role_id, windows = access.tier(settings, interaction)
        quota = await self.service.quota(interaction.user.id, windows, interaction.guild_id)
        if access.is_exempt(self.settings, interaction):
            text = messages.quota(quota, t(interaction.locale, "no per-user limits apply to you"),
                                  locale=interaction.locale)
        else:
            text = messages.quota(quota, tr(interaction.locale, access.tier_name(interaction, role_id)),
                                  self.settings.upscale_weight, locale=interaction.locale)
        await say_privately(interaction, text)

    @app_commands.command(name="stats", description="Usage statistics (admins)")
    @app_commands.describe(user="Only this user's usage")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def stats(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        if not (access.is_owner(self.settings, interaction) or access.is_manager(interaction)):
            raise BadInput("Only server managers and the bot's owners can see usage statistics.")
        guild_id = interaction.guild_id  # this server only; `zbot stats` has every server's totals
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await usage_report(self.service.store, now=time.time(), user_id=user.id if user else None,
                                    guild_id=guild_id)
        where = interaction.guild.name if interaction.guild else "this server"
        title = f"Usage of {user.display_name} in {where}" if user else f"zbot usage in {where}"
        embed = messages.stats_embed(report, self.service.executor.depth, tr(interaction.locale, title),
                                     locale=interaction.locale)
        files = []
        if report.per_day:
            chart = await asyncio.to_thread(per_day_chart, report.per_day, date.fromisoformat(report.today))
            files.append(discord.File(io.BytesIO(chart), filename="per-day.png"))
            embed.set_image(url="attachment://per-day.png")
        await interaction.followup.send(embed=embed, files=files, ephemeral=True,
                                        allowed_mentions=discord.AllowedMentions.none())
