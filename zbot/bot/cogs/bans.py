"""/bans: ban (with a reason and an optional length), unban and list who may not use zbot in this server,
for its managers and the bot's owners (who may also ban in every server). The ban itself is checked and
kept by the core (zbot.core.bans); a banned member's requests are refused there. Every answer is private.

A group, not a bare /ban: Discord has its own /ban, which bans from the server itself."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot import access, messages
from zbot.bot.errors import say_privately
from zbot.bot.i18n import t
from zbot.config import Settings
from zbot.core.bans import MAX_DAYS, REASON_LIMIT, Actor, Ban, BanEvent
from zbot.core.jobs import BadInput
from zbot.core.service import Service

log = logging.getLogger(__name__)

LISTED = 20  # bans shown by /bans list, then the last changes


def actor(settings: Settings, interaction: discord.Interaction) -> Actor:
    """Who is asking, as the core sees it: an owner, a manager of the server it comes from, or neither."""
    return Actor(interaction.user.id, owner=access.is_owner(settings, interaction),
                 manages=interaction.guild_id if access.is_manager(interaction) else None)


def where(locale, guild_id: int | None) -> str:
    return t(locale, "in this server") if guild_id is not None else t(locale, "in every server")


def until(locale, ban: Ban | BanEvent) -> str:
    if ban.expires_at is None:
        return t(locale, "until it is lifted")
    return t(locale, "until {}", f"<t:{int(ban.expires_at)}:R>")


def banned_line(locale, ban: Ban) -> str:
    """What the admin who banned is told."""
    return t(locale, "{} is banned from zbot {} {}; reason: {}.", f"<@{ban.user_id}>", where(locale, ban.guild_id),
             until(locale, ban), messages.quote_prompt(ban.reason, 300) if ban.reason else t(locale, "none given"))


def who(locale, actor_id: int) -> str:
    return f"<@{actor_id}>" if actor_id else t(locale, "the command line")


class BanCommands(commands.Cog):
    group = app_commands.Group(name="bans", description="Who may not use zbot in this server (admins)",
                               guild_only=True, default_permissions=discord.Permissions(manage_guild=True))

    def __init__(self, settings: Settings, service: Service):
        self.settings = settings
        self.service = service

    def _actor(self, interaction: discord.Interaction) -> Actor:
        asking = actor(self.settings, interaction)
        if not (asking.owner or asking.manages):
            raise BadInput("admin.only")
        return asking

    @group.command(name="ban", description="Stop a member from using zbot in this server")
    @app_commands.describe(user="The member", reason="Why (they are told when they ask for an image)",
                           days="For how many days (left out: until it is lifted)",
                           everywhere="In every server, not only this one (bot owners only)")
    async def ban(self, interaction: discord.Interaction, user: discord.User,
                  reason: app_commands.Range[str, 1, REASON_LIMIT],
                  days: app_commands.Range[int, 1, MAX_DAYS] | None = None, everywhere: bool = False) -> None:
        asking = self._actor(interaction)
        ban = await self.service.ban(asking, user.id, None if everywhere else interaction.guild_id, reason, days)
        await say_privately(interaction, messages.fit(banned_line(interaction.locale, ban)))

    @group.command(name="unban", description="Let a member use zbot in this server again")
    @app_commands.describe(user="The member", everywhere="Lift their ban from every server (bot owners only)")
    async def unban(self, interaction: discord.Interaction, user: discord.User, everywhere: bool = False) -> None:
        asking = self._actor(interaction)
        ban = await self.service.unban(asking, user.id, None if everywhere else interaction.guild_id)
        await say_privately(interaction, t(interaction.locale, "{} may use zbot {} again.", f"<@{ban.user_id}>",
                                           where(interaction.locale, ban.guild_id)))

    @group.command(name="list", description="Who is banned from zbot here, and the last bans and unbans")
    async def list_bans(self, interaction: discord.Interaction) -> None:
        self._actor(interaction)
        locale = interaction.locale
        bans, events = await self.service.ban_list(interaction.guild_id)
        lines = [t(locale, "**Banned from zbot here**: {}", len(bans)) if bans else
                 t(locale, "No one is banned from zbot here.")]
        for ban in bans[:LISTED]:
            lines.append(f"• <@{ban.user_id}> · {where(locale, ban.guild_id)} · {until(locale, ban)} · "
                         f"{t(locale, 'banned by {}', who(locale, ban.banned_by))} · {messages.quote_prompt(ban.reason, 100)}")
        if events:
            lines.append(t(locale, "**Last bans and unbans**, newest first"))
        for event in events:
            done = "{} banned {} {}" if event.action == "ban" else "{} lifted the ban of {} {}"
            lines.append(f"• <t:{int(event.at)}:R> " + t(locale, done, who(locale, event.actor_id),
                                                         f"<@{event.user_id}>", where(locale, event.guild_id)))
        await say_privately(interaction, messages.fit("\n".join(lines)))
