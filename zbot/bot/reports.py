"""Reporting an image: the Report button under every image opens a short form; the report is kept in
the database and posted to the admins' channel (ZBOT_REPORT_CHANNEL_ID) with the prompt, requester and
seed, and a button that deletes the image in one click (for bot owners and that server's managers).
Discord's Developer Policy asks every app to give people a way to report content."""

from __future__ import annotations

import logging
import time

import discord
from discord.ext import commands

from ..config import Settings
from ..jobs import BadInput, Generation, Status
from ..service import Service
from . import access, messages
from .errors import answer_error, guarded, say_privately
from .posting import DISCORD_ERRORS, describe
from .views import REMOVE_REPORTED, Buttons

log = logging.getLogger(__name__)

NOTE_LIMIT = 500


class ReportForm(discord.ui.Modal, title="Report this image"):
    note = discord.ui.TextInput(label="What is wrong with it? (optional)", style=discord.TextStyle.paragraph,
                                required=False, max_length=NOTE_LIMIT, custom_id="zbot:report-note")

    def __init__(self, reports: Reports, generation_id: int):
        super().__init__(timeout=15 * 60)
        self.reports = reports
        self.generation_id = generation_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.reports.submit(interaction, self.generation_id, self.note.value or "")

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await answer_error(interaction, error)


class Reports(commands.Cog):
    def __init__(self, client: discord.Client, settings: Settings, service: Service):
        self.client = client
        self.settings = settings
        self.service = service
        self.buttons = Buttons({REMOVE_REPORTED: self.remove_button})

    async def cog_load(self) -> None:
        self.client.add_dynamic_items(*self.buttons.types.values())

    @guarded
    async def report_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        """The Report button under an image: the form first."""
        access.check_place(self.settings, interaction)
        if await self.service.store.get(generation_id) is None:
            raise BadInput("That image is no longer in my records.")
        await interaction.response.send_modal(ReportForm(self, generation_id))

    async def submit(self, interaction: discord.Interaction, generation_id: int, note: str) -> None:
        generation = await self.service.store.get(generation_id)
        if generation is None:
            raise BadInput("That image is no longer in my records.")
        report_id = await self.service.store.add_report(generation_id, interaction.user.id, generation.guild_id,
                                                        note.strip()[:NOTE_LIMIT], time.time())
        log.warning("report %s: user %s reported job %s: %r", report_id, interaction.user.id, generation_id,
                    note[:200])
        await say_privately(interaction, messages.REPORTED)
        if self.settings.report_channel_id is None:
            return
        try:
            posted = await self.client.get_partial_messageable(self.settings.report_channel_id).send(
                embed=messages.report_embed(report_id, generation, interaction.user.id, note),
                view=self.buttons.view(report_id, REMOVE_REPORTED),
                allowed_mentions=discord.AllowedMentions.none())
        except DISCORD_ERRORS as error:
            log.error("report %s could not be posted in the report channel %s (%s): is the bot allowed to "
                      "send messages there?", report_id, self.settings.report_channel_id, describe(error))
            return
        await self.service.store.update_report(report_id, report_message_id=posted.id)

    @guarded
    async def remove_button(self, interaction: discord.Interaction, report_id: int) -> None:
        """On a report: delete the reported image, for a bot owner or a manager of its server."""
        report = await self.service.store.report(report_id)
        generation = await self.service.store.get(report["generation_id"]) if report else None
        if generation is None:
            raise BadInput("That report's image is no longer in my records.")
        if not (access.is_owner(self.settings, interaction)
                or (access.is_manager(interaction) and interaction.guild_id == generation.guild_id)):
            raise BadInput("Only the bot's owners, or managers of the server the image is in, can delete it.")
        await interaction.response.defer()
        await self._delete_image(generation)
        await self.service.store.update_report(report_id, resolved_by=interaction.user.id, resolved_at=time.time())
        await interaction.edit_original_response(
            content=f"Image deleted by <@{interaction.user.id}>.", view=None,
            allowed_mentions=discord.AllowedMentions.none())
        log.info("report %s: job %s deleted by user %s", report_id, generation.id, interaction.user.id)

    async def _delete_image(self, generation: Generation) -> None:
        if generation.message_id is not None and generation.channel_id is not None and \
                generation.status == Status.POSTED:
            message = self.client.get_partial_messageable(generation.channel_id).get_partial_message(
                generation.message_id)
            try:
                await message.delete()
            except discord.NotFound:
                pass  # deleted already
        await self.service.lifecycle.deleted(generation.id)
