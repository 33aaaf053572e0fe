"""Server admins in Discord: /settings (view, set, reset, history) and /queue. Checked by the bot
itself (server managers of this server, or bot owners), not only by Discord's command visibility,
which any server's owner can change. Every answer is private to the admin."""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot import access, messages
from zbot.bot.errors import answer_error, say_privately
from zbot.bot.i18n import t
from zbot.bot.posting import NO_MENTIONS
from zbot.config import Settings
from zbot.core.jobs import BadInput, Status
from zbot.core.moderation import QueuedJob
from zbot.core.server_settings import SERVER_SETTINGS
from zbot.core.service import Service

QUEUE_SHOWN = 20  # jobs listed by /queue; the menu offers at most 25 (Discord's limit)


def _admin(settings: Settings, interaction: discord.Interaction) -> bool:
    """True for a bot owner, False for a manager of this server; anyone else is refused."""
    if access.is_owner(settings, interaction):
        return True
    if access.is_manager(interaction):
        return False
    raise BadInput("admin.only")


class Admin(commands.Cog):
    settings_group = app_commands.Group(name="settings", description="zbot's settings in this server (admins)",
                                        guild_only=True, default_permissions=discord.Permissions(manage_guild=True))

    def __init__(self, settings: Settings, service: Service):
        self.settings = settings
        self.service = service

    # -- /settings -----------------------------------------------------------------------------

    @settings_group.command(name="view", description="Every setting here, and whether this server set it")
    async def view(self, interaction: discord.Interaction) -> None:
        _admin(self.settings, interaction)
        locale = interaction.locale  # each line through t(): nothing finished is translated afterwards
        lines = [t(locale, "**zbot in this server** (server: set here with /settings set; default: the bot's own)")]
        for setting in self.service.server_settings(interaction.guild_id):
            if setting.held is not None:  # stored, but what applies is the owner's ceiling (or the default)
                lines.append(t(locale, "• {} = {} (server: {} is held back by the bot owner's settings)",
                               f"`{setting.name}`", _code(setting.value), _code(setting.held, 60)))
            else:
                lines.append(t(locale, "• {} = {} (server)" if setting.own else "• {} = {} (default)",
                               f"`{setting.name}`", _code(setting.value)))
        await say_privately(interaction, messages.fit("\n".join(lines)))

    @settings_group.command(name="set", description="Change a setting in this server")
    @app_commands.describe(name="The setting", value="Its value, written as in the bot's environment (.env)")
    async def set(self, interaction: discord.Interaction, name: str, value: str) -> None:
        owner = _admin(self.settings, interaction)
        change = await self.service.set_server_setting(interaction.guild_id, name, value, interaction.user.id,
                                                       owner=owner)
        was = _code(change.old) if change.old is not None else t(interaction.locale, "the default")
        await say_privately(interaction, messages.fit(
            t(interaction.locale, "{} is now {} in this server (it was {}); the next request uses it.", f"`{name}`",
              _code(change.new), was)))

    @settings_group.command(name="reset", description="Put a setting back to the bot's default in this server")
    @app_commands.describe(name="The setting")
    async def reset(self, interaction: discord.Interaction, name: str) -> None:
        _admin(self.settings, interaction)
        change = await self.service.reset_server_setting(interaction.guild_id, name, interaction.user.id)
        await say_privately(interaction, messages.fit(
            t(interaction.locale, "{} is back to the default here: {} (it was {}).", f"`{name}`", _code(change.applies),
              _code(change.old))))

    @settings_group.command(name="history", description="The last changes to the settings in this server")
    async def history(self, interaction: discord.Interaction) -> None:
        _admin(self.settings, interaction)
        changes = await self.service.settings_history(interaction.guild_id)
        if not changes:
            await say_privately(interaction, t(interaction.locale, "No setting was changed in this server yet."))
            return
        lines = [t(interaction.locale, "**Settings changes here**, newest first")]
        for change in changes:
            before = _code(change.old) if change.old is not None else t(interaction.locale, "default")
            after = _code(change.new) if change.new is not None else t(interaction.locale, "default")
            who = f"<@{change.actor_id}>" if change.actor_id else t(interaction.locale, "the command line")
            lines.append(f"• <t:{int(change.at)}:R> {who}: `{change.name}` {before} → {after}")
        await say_privately(interaction, messages.fit("\n".join(lines)))

    @set.autocomplete("name")
    @reset.autocomplete("name")
    async def _names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"{name}: {meaning}"[:100], value=name)
                for name, meaning in SERVER_SETTINGS.items() if current.lower() in name][:25]

    @set.autocomplete("value")
    async def _values(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The valid choices where there are few; else the value now and an example."""
        name = getattr(interaction.namespace, "name", None)
        here = self.service.settings_for(interaction.guild_id)
        now = self._now(interaction.guild_id, name)
        options = {
            "default_size": list(here.sizes),
            "safety_nsfw_channels": ["post", "spoiler"],
            "default_count": [str(n) for n in range(1, here.max_count + 1)],
            "max_count": [str(n) for n in range(1, self.settings.max_count + 1)],
            "rate_limits": [now, "5/minute,100/day", "2/minute,20/day"],
            "channel_ids": [now, str(interaction.channel_id or "")],
            "role_rate_limits": [now, '{"ROLE_ID": "20/minute,500/day"}'],
            "blocked_words": [now],
            "styles": [now, ",".join(self.settings.styles), *self.settings.styles],
            "default_style": list(here.styles),
        }.get(name, [])
        # Only whole values: Discord takes at most 100 characters, and a cut one would be saved cut.
        seen = [value for value in dict.fromkeys(options)
                if value and len(value) <= 100 and current.lower() in value.lower()]
        return [app_commands.Choice(name=value, value=value) for value in seen][:25]

    def _now(self, guild_id: int | None, name: str | None) -> str:
        """A setting's value in a server now, as written in the environment."""
        return next((s.value for s in self.service.server_settings(guild_id) if s.name == name), "")

    # -- /queue --------------------------------------------------------------------------------

    @app_commands.command(name="queue", description="The requests waiting and being drawn in this server (admins)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def queue(self, interaction: discord.Interaction) -> None:
        _admin(self.settings, interaction)
        listing = await self.service.queue(interaction.guild_id)
        jobs = listing.jobs
        if not jobs:
            await say_privately(interaction, t(interaction.locale, "Nothing is waiting or being drawn in this server."))
            return
        now = time.time()
        lines = [t(interaction.locale, "**The queue in this server**: {} request ({} in the whole queue)" if len(jobs) == 1
                   else "**The queue in this server**: {} requests ({} in the whole queue)", len(jobs), listing.depth)]
        for job in jobs[:QUEUE_SHOWN]:
            lines.append(f"• {_place(job, interaction.locale)} · <@{job.user_id}> · "
                         f"{messages.quote_prompt(job.prompt, 60)} · "
                         f"{t(interaction.locale, *_age(now - job.created_at))}")
        waiting = [job for job in jobs if job.cancellable][:25]
        view = CancelMenu(self, waiting, interaction.locale) if waiting else discord.utils.MISSING
        await interaction.response.send_message(messages.fit("\n".join(lines)), view=view, ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

    async def cancel_from_menu(self, interaction: discord.Interaction, job_id: int) -> None:
        _admin(self.settings, interaction)
        job = await self.service.cancel_queued(interaction.guild_id, job_id, interaction.user.id)
        await say_privately(interaction, t(interaction.locale, "Cancelled the request of {}; they are told.",
                                           f"<@{job.user_id}>"))


class CancelMenu(discord.ui.View):
    """Under /queue's list: pick a waiting request to take out of the queue. The list is a snapshot, so
    the menu lives as long as the answer is likely looked at."""

    def __init__(self, admin: Admin, waiting: list[QueuedJob], locale=None):
        super().__init__(timeout=10 * 60)
        self.admin = admin
        select = discord.ui.Select(placeholder=t(locale, "Cancel a waiting request…"), options=[
            discord.SelectOption(label=f"#{job.position or '?'} · {' '.join(job.prompt.split())}"[:100],
                                 description=f"job {job.job_id} by user {job.user_id}"[:100], value=str(job.job_id))
            for job in waiting])
        select.callback = self._chosen
        self.select = select
        self.add_item(select)

    async def _chosen(self, interaction: discord.Interaction) -> None:
        try:
            await self.admin.cancel_from_menu(interaction, int(self.select.values[0]))
        except Exception as error:  # noqa: BLE001 - answered, and logged when unexpected
            await answer_error(interaction, error)


def _code(value: str | None, limit: int = 150) -> str:
    """A setting's value as inline code, on one line, cut to `limit` (a long list of words would hide
    the other settings), its backticks made harmless."""
    text = " ".join((value or "").split()).replace("`", "ˋ") or "(empty)"
    return f"`{text[:limit]}{'…' if len(text) > limit else ''}`"


def _place(job: QueuedJob, locale) -> str:
    """Where a job of /queue's list stands: drawing now, its place in this zbot's queue, or with another."""
    if not job.mine:
        return t(locale, "held by another zbot")
    if job.status == Status.RUNNING or job.position == 0:
        return t(locale, "drawing now")
    return f"#{job.position}" if job.position else t(locale, "waiting")


def _age(seconds: float) -> tuple[str, str]:
    """A template and its value, for t()."""
    if seconds < 60:
        return "{} s ago", str(int(seconds))
    if seconds < 3600:
        return "{} min ago", str(int(seconds // 60))
    return "{} h ago", f"{seconds / 3600:.1f}"
