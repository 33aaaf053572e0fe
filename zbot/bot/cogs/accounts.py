"""What people used and have left: /quota for everyone, /stats for admins (bot owners see every
server, server managers their own)."""

from __future__ import annotations

import io

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot import access, messages
from zbot.bot.errors import say_privately
from zbot.bot.i18n import t, tr
from zbot.config import Settings
from zbot.core.jobs import BadInput
from zbot.core.service import Service
from zbot.core.usage import UsageReport

# A refusal's kind (zbot.core.jobs.Refused.kind) as /stats names it.
REASON_NAMES = {"rate_limited": "over a rate limit", "too_many_pending": "too many pending",
                "queue_full": "queue full", "bad_input": "input not allowed", "not_ready": "not ready"}
SHOWN_MEMBERS = 10


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
            raise BadInput("stats.not_allowed")
        guild_id = interaction.guild_id  # this server only; `zbot stats` has every server's totals
        await interaction.response.defer(ephemeral=True, thinking=True)
        stats = await self.service.stats(guild_id, user.id if user else None)
        report = stats.report
        where = interaction.guild.name if interaction.guild else "this server"
        locale = interaction.locale
        title = t(locale, "Usage of {} in {}", user.display_name, where) if user else t(locale, "zbot usage in {}", where)
        embed = messages.stats_embed(report, stats.depth, title,
                                     locale=interaction.locale)
        for name, value in members(report, interaction.locale):
            embed.add_field(name=name, value=value, inline=False)
        files = []
        if stats.chart is not None:
            files.append(discord.File(io.BytesIO(stats.chart), filename="per-day.png"))
            embed.set_image(url="attachment://per-day.png")
        await interaction.followup.send(embed=embed, files=files, ephemeral=True,
                                        allowed_mentions=discord.AllowedMentions.none())


def members(report: UsageReport, locale=None) -> list[tuple[str, str]]:
    """The per-member fields of /stats: whose results the safety check flagged, and who was refused how
    often and why, the most first, so that admins see who keeps trying."""
    fields = []
    if report.flagged_users:
        fields.append((t(locale, "Flagged, by member"), "\n".join(
            f"<@{user}>: {count}" for user, count in report.flagged_users[:SHOWN_MEMBERS])))
    if report.refused_users:
        fields.append((t(locale, "Refused, by member"), "\n".join(
            f"<@{user.user_id}>: {user.total} (" + ", ".join(
                f"{t(locale, REASON_NAMES.get(reason, reason))} {count}"
                for reason, count in sorted(user.by_reason.items(), key=lambda item: -item[1])) + ")"
            for user in report.refused_users[:SHOWN_MEMBERS])))
    return fields
