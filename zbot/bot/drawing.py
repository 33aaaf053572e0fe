"""Making images: /draw, /reroll, the "Reroll" message menu, and the Reroll and Delete buttons under
every image. Each command is one method holding its options and its body."""

from __future__ import annotations

import dataclasses
import logging

import discord
from discord import app_commands
from discord.ext import commands

from ..config import SEED_LIMIT, Settings
from ..jobs import BadInput, Generation, Status
from ..service import Service
from . import access
from .delivery import Delivery
from .errors import guarded
from .posting import Poster
from .reports import Reports
from .views import DELETE, REPORT, REROLL, Buttons

log = logging.getLogger(__name__)


class Drawing(commands.Cog):
    def __init__(self, client: discord.Client, settings: Settings, service: Service, reports: Reports):
        self.client = client
        self.settings = settings
        self.service = service
        self.buttons = Buttons({REROLL: self.reroll_button, DELETE: self.delete_button,
                                REPORT: reports.report_button})
        self.poster = Poster(client, service, self.buttons.under_image, give_up_s=settings.recovery_max_age,
                             spoil_flagged=settings.safety_nsfw_channels == "spoiler")
        self.delivery = Delivery(service, self.poster)
        # The sizes are the configuration's: set them on this instance's copy of the command.
        size = self.draw._params["size"]
        self.draw._params["size"] = dataclasses.replace(size, choices=[
            app_commands.Choice(name=f"{name} ({w}×{h})", value=name)
            for name, (w, h) in list(settings.size_table.items())[:25]])
        self.reroll_menu = app_commands.ContextMenu(name="Reroll", callback=self.reroll_message)
        self.reroll_menu.guild_only = True

    async def cog_load(self) -> None:
        self.client.tree.add_command(self.reroll_menu)
        self.client.add_dynamic_items(*self.buttons.types.values())

    # -- commands ----------------------------------------------------------------------------

    @app_commands.command(name="draw", description="Draw an image from a prompt")
    @app_commands.describe(prompt="What to draw", size="The image's shape (default: the first one)",
                           seed="A number to repeat an image exactly (random when left out)")
    @app_commands.guild_only()
    async def draw(self, interaction: discord.Interaction, prompt: str, size: str | None = None,
                   seed: app_commands.Range[int, 0, SEED_LIMIT - 1] | None = None) -> None:
        request = access.draw_request(self.settings, interaction, prompt, size=size, seed=seed)
        await self.delivery.draw(interaction, request)

    @app_commands.command(name="reroll", description="Draw your latest image in this channel again with a new seed")
    @app_commands.guild_only()
    async def reroll(self, interaction: discord.Interaction) -> None:
        generation = await self.service.store.latest_for(interaction.user.id, interaction.channel_id)
        if generation is None:
            raise BadInput("You have no image in this channel to reroll yet; use /draw first.")
        await self._reroll(interaction, generation)

    async def reroll_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu Apps > Reroll, on any image zbot posted."""
        generation = await self.service.store.by_message(message.id)
        if generation is None or message.author.id != self.client.user.id:
            raise BadInput("That message isn't a zbot image; Reroll works on images I posted.")
        await self._reroll(interaction, generation)

    # -- buttons -----------------------------------------------------------------------------

    @guarded
    async def reroll_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        access.check_place(self.settings, interaction)
        generation = await self.service.store.get(generation_id)
        if generation is None or generation.status in (Status.FAILED, Status.REJECTED, Status.CANCELLED):
            raise BadInput("That image is no longer in my records, so it can't be rerolled; use /draw.")
        await self._reroll(interaction, generation)

    @guarded
    async def delete_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        access.check_place(self.settings, interaction)
        generation = await self.service.store.get(generation_id)
        if generation is not None and generation.message_id not in (None, interaction.message.id):
            raise BadInput("That button doesn't belong to this message.")
        if not access.may_remove(self.settings, interaction, generation):
            raise BadInput("Only the person who asked for this image, a server manager or a bot owner can "
                           "delete it.")
        await interaction.response.defer()
        await interaction.message.delete()
        if generation is not None:
            await self.service.lifecycle.deleted(generation.id)
            log.info("job %s deleted by user %s", generation.id, interaction.user.id)

    # -- shared --------------------------------------------------------------------------------

    async def _reroll(self, interaction: discord.Interaction, generation: Generation) -> None:
        if generation.status == Status.DELETED:
            raise BadInput("That image was deleted, so it can't be rerolled; use /draw.")
        # Same prompt, size and steps, a new seed; the clicker's own limits apply.
        request = access.draw_request(self.settings, interaction, generation.prompt, size=generation.size,
                                      steps=generation.steps, parent_id=generation.id)
        await self.delivery.draw(interaction, request)
