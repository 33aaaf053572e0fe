"""Reporting an image: the Report button under every image opens a short form; the report is kept in
the database and posted to the admins' channel (ZBOT_REPORT_CHANNEL_ID) with the prompt, requester and
seed, and buttons that delete the image and ban its requester from zbot in that server, in one click each
(for bot owners and that server's managers).
Discord's Developer Policy asks every app to give people a way to report content."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from zbot.bot import access, messages
from zbot.bot.cogs.bans import actor, banned_line
from zbot.bot.discord_errors import DISCORD_ERRORS, describe
from zbot.bot.errors import answer_error, guarded, say_privately
from zbot.bot.i18n import t
from zbot.bot.views import BAN_REPORTED, REMOVE_REPORTED, ButtonKind, Buttons
from zbot.config import Settings
from zbot.core.jobs import BadInput, Generation
from zbot.core.moderation import NOTE_LIMIT
from zbot.core.service import Service

log = logging.getLogger(__name__)


class ReportForm(discord.ui.Modal, title="Report this image"):
    def __init__(self, reports: Reports, generation_id: int, locale=None):
        super().__init__(timeout=15 * 60, title=t(locale, "Report this image"))
        self.reports = reports
        self.generation_id = generation_id
        self.note = discord.ui.TextInput(label=t(locale, "What is wrong with it? (optional)"),
                                         style=discord.TextStyle.paragraph, required=False, max_length=NOTE_LIMIT,
                                         custom_id="zbot:report-note")
        self.add_item(self.note)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.reports.submit(interaction, self.generation_id, self.note.value or "")

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await answer_error(interaction, error)


class Reports(commands.Cog):
    def __init__(self, client: discord.Client, settings: Settings, service: Service):
        self.client = client
        self.settings = settings
        self.service = service
        self.buttons = Buttons({REMOVE_REPORTED: self.remove_button, BAN_REPORTED: self.ban_button})

    async def cog_load(self) -> None:
        self.client.add_dynamic_items(*self.buttons.types.values())

    @guarded
    async def report_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        """The Report button under an image: the form first."""
        access.check_place(self.settings, interaction)
        await self.service.reportable(generation_id)
        await interaction.response.send_modal(ReportForm(self, generation_id, interaction.locale))

    async def submit(self, interaction: discord.Interaction, generation_id: int, note: str) -> None:
        # Answer first: storing can wait on the database longer than Discord's 3 s.
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except DISCORD_ERRORS as error:
            log.warning("could not acknowledge a report from user %s (%s)", interaction.user.id, describe(error))
        reported = await self.service.report(generation_id, interaction.user.id, note)
        report_id, generation = reported.report_id, reported.generation
        try:
            await say_privately(interaction, messages.REPORTED if report_id else messages.REPORTED_ALREADY)
        except DISCORD_ERRORS as error:
            log.warning("could not thank user %s for a report (%s)", interaction.user.id, describe(error))
        if report_id is None or self.settings.report_channel_id is None:
            return
        try:
            posted = await self.client.get_partial_messageable(self.settings.report_channel_id).send(
                embed=messages.report_embed(report_id, generation, interaction.user.id, note),
                view=self.buttons.view(report_id, REMOVE_REPORTED, BAN_REPORTED),
                allowed_mentions=discord.AllowedMentions.none())
        except DISCORD_ERRORS as error:
            log.error("report %s could not be posted in the report channel %s (%s): is the bot allowed to "
                      "send messages there?", report_id, self.settings.report_channel_id, describe(error))
            return
        await self.service.report_posted(report_id, posted.id)

    @guarded
    async def remove_button(self, interaction: discord.Interaction, report_id: int) -> None:
        """On a report: delete the reported image, for a bot owner or a manager of its server."""
        async def take_down(generation: Generation) -> None:
            await interaction.response.defer()
            await self._delete_message(generation)

        await self.service.delete_reported(actor(self.settings, interaction), report_id, take_down)
        await interaction.edit_original_response(
            content=_noted(interaction, f"Image deleted by <@{interaction.user.id}>."),
            view=self._left(interaction, report_id, REMOVE_REPORTED), allowed_mentions=discord.AllowedMentions.none())

    @guarded
    async def ban_button(self, interaction: discord.Interaction, report_id: int) -> None:
        """On a report: ban the image's requester from zbot in its server (the core checks who may)."""
        await interaction.response.defer()  # the database may take longer than Discord's 3 s
        ban = await self.service.ban_reported(actor(self.settings, interaction), report_id)
        await interaction.edit_original_response(
            content=_noted(interaction, f"<@{ban.user_id}> banned from zbot by <@{interaction.user.id}>."),
            view=self._left(interaction, report_id, BAN_REPORTED), allowed_mentions=discord.AllowedMentions.none())
        await say_privately(interaction, messages.fit(banned_line(interaction.locale, ban)))

    def _left(self, interaction: discord.Interaction, report_id: int, used: ButtonKind) -> discord.ui.View | None:
        """The report's buttons still on its message, less the one just used."""
        shown = {child.custom_id for row in getattr(interaction.message, "components", []) for child in row.children}
        left = [kind for kind in (REMOVE_REPORTED, BAN_REPORTED) if kind != used and kind.custom_id(report_id) in shown]
        return self.buttons.view(report_id, *left) if left else None

    async def _delete_message(self, generation: Generation) -> None:
        """Delete the reported image's message; BadInput saying why it couldn't be done."""
        message = self.client.get_partial_messageable(generation.channel_id).get_partial_message(
            generation.message_id)
        try:
            await message.delete()
        except discord.NotFound:
            pass  # someone deleted the message already
        except DISCORD_ERRORS as error:
            log.warning("could not delete message %s of job %s (%s)", generation.message_id, generation.id,
                        describe(error))
            raise BadInput("delete.failed", {"error": describe(error), "link": "https://discord.com/channels/"
                           f"{generation.guild_id or '@me'}/{generation.channel_id}/{generation.message_id}"}) from None


def _noted(interaction: discord.Interaction, line: str) -> str:
    """The report message's text with what an admin did on it added (a deletion, a ban)."""
    before = getattr(interaction.message, "content", "") or ""
    return messages.fit(f"{before}\n{line}".strip())
