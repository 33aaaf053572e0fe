"""Making images: /draw, /reroll, the "Reroll" message menu, and the Reroll and Delete buttons under
every image. Each command is one method holding its options and its body."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging

import discord
from discord import app_commands
from discord.ext import commands
from zbot.config import SEED_LIMIT, Settings
from zbot.core.jobs import BadInput, Generation, Result, Status, upscaled_size
from zbot.core.service import Service
from zbot.bot import access, messages
from zbot.bot.delivery import Delivery
from zbot.bot.errors import guarded
from zbot.bot.posting import NO_MENTIONS, Poster
from zbot.bot.i18n import localize_view
from zbot.bot.refine import Refine
from zbot.bot.cogs.reports import Reports
from zbot.bot.views import CANCEL, DELETE, EDIT, PICK, REPORT, REROLL, UPSCALE, VARY, VARY_ONE, Buttons

log = logging.getLogger(__name__)


class Drawing(commands.Cog):
    def __init__(self, client: discord.Client, settings: Settings, service: Service, reports: Reports):
        self.client = client
        self.settings = settings
        self.service = service
        self.poster = Poster(client, service, self.view_for, give_up_s=settings.recovery_max_age)
        self.delivery = Delivery(service, self.poster, cancel_view=lambda job_id: self.buttons.view(job_id, CANCEL))
        self.refine = Refine(settings, service, self.delivery)
        self.buttons = Buttons(
            {REROLL: self.reroll_button, DELETE: self.delete_button, REPORT: reports.report_button,
             CANCEL: self.cancel_button, VARY: self.refine.vary_button, UPSCALE: self.refine.upscale_button,
             EDIT: self.refine.edit_button},
            indexed={PICK: self.pick_button, VARY_ONE: self.refine.vary_one_button},
            sizes=settings.size_table, size_handler=self.refine.size_chosen,
            image_kinds=((REROLL, VARY, UPSCALE, EDIT), (DELETE, REPORT)), grid_kinds=(REROLL, DELETE, REPORT))
        # Sizes and counts are the configuration's: set them on this instance's copy of the command.
        params = self.draw._params
        params["size"] = dataclasses.replace(params["size"], choices=[
            app_commands.Choice(name=f"{name} ({w}×{h})", value=name)
            for name, (w, h) in list(settings.size_table.items())[:25]])
        params["count"] = dataclasses.replace(params["count"], min_value=1, max_value=settings.max_count)
        self.reroll_menu = app_commands.ContextMenu(name="Reroll", callback=self.reroll_message)
        self.reroll_menu.guild_only = True

    def here(self, interaction: discord.Interaction) -> Settings:
        """The settings of the server the interaction comes from (its /settings on the environment's)."""
        return self.service.settings_for(interaction.guild_id)

    async def cog_load(self) -> None:
        self.client.tree.add_command(self.reroll_menu)
        self.client.add_dynamic_items(*self.buttons.all_types)

    def view_for(self, result: Result, withheld: frozenset[int]) -> discord.ui.View:
        """The buttons under a posted image (Upscale greyed out at the largest size), or under a grid."""
        if result.count == 1:
            return self.image_view(result.job_id, result.width, result.height)
        return self.buttons.under_grid(result.job_id, result.count, withheld)

    def image_view(self, generation_id: int, width: int, height: int) -> discord.ui.View:
        bigger = upscaled_size(width, height)
        return self.buttons.under_image(generation_id, (width, height),
                                        disabled=frozenset({UPSCALE}) if bigger[0] * bigger[1] <= width * height
                                        else frozenset())

    # -- commands ----------------------------------------------------------------------------

    @app_commands.command(name="draw", description="Draw an image from a prompt")
    @app_commands.describe(prompt="What to draw", size="The image's shape (default: the first one)",
                           seed="A number to repeat an image exactly (random when left out)",
                           count="How many images to choose from (seeds seed, seed+1, ...); each counts")
    @app_commands.guild_only()
    async def draw(self, interaction: discord.Interaction, prompt: str, size: str | None = None,
                   seed: app_commands.Range[int, 0, SEED_LIMIT - 1] | None = None,
                   count: int | None = None) -> None:
        request = access.draw_request(self.here(interaction), interaction, prompt, size=size, seed=seed, count=count)
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
    async def pick_button(self, interaction: discord.Interaction, generation_id: int, index: int) -> None:
        """Button N under a grid: image N alone, at full size, with the single-image buttons; posted from
        the kept file (checked again first), or drawn again from its seed when that is gone."""
        access.check_place(self.settings, interaction)
        grid = await self.service.store.get(generation_id)
        if grid is None or index >= grid.count or grid.status != Status.POSTED:
            raise BadInput("That grid is no longer on show, so its images can't be picked; use /draw.")
        if not access.may_remove(self.settings, interaction, grid):
            raise BadInput("Only the person who asked for these images (or an admin) can pick one.")
        seed = grid.seeds[index]
        png = await self.service.lifecycle.image(grid.id, index)
        if png is None:  # kept no longer: the same seed, size and steps draw the same image
            request = access.draw_request(self.here(interaction), interaction, grid.prompt, size=grid.size, seed=seed,
                                          steps=grid.steps, parent_id=grid.id, count=1, operation="pick")
            await self.delivery.draw(interaction, request)
            return
        await interaction.response.defer()  # nothing shown yet; the image comes as a message of its own
        checker = getattr(self.service.inspector, "checker", None)
        if getattr(getattr(checker, "device", None), "type", None) == "cuda":
            await self.service.executor.ready.wait()  # not while the model captures its CUDA graphs
        inspector = self.service.inspector
        verdict = await asyncio.to_thread(inspector.png, png) if inspector is not None else None
        if verdict is not None and verdict.flagged and not await self.poster.age_restricted(interaction.channel_id):
            raise BadInput(messages.WITHHELD_PICK)  # answered privately
        pick_id = await self.service.store.record(
            source="discord", user_id=interaction.user.id, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, prompt=grid.prompt, seed=seed, size=grid.size, width=grid.width,
            height=grid.height, steps=grid.steps, status=Status.DRAWN.value, parent_id=grid.id, count=0, cost=0,
            operation="pick", interaction_id=interaction.id, owner=self.service.lifecycle.owner,
            safety_score=verdict.score if verdict else None, safety_checker=verdict.checker if verdict else None)
        try:
            message = await interaction.followup.send(
                messages.picked(grid.prompt, seed, index, grid.size or "", grid.width, grid.height,
                                interaction.user.id, locale=interaction.locale),
                file=discord.File(io.BytesIO(png), filename=f"zbot-{seed}.png",
                                  spoiler=bool(verdict and verdict.flagged and self.poster.spoils(interaction.guild_id))),
                view=localize_view(self.image_view(pick_id, grid.width, grid.height), interaction.locale),
                allowed_mentions=NO_MENTIONS, wait=True)
        except BaseException:
            await self.service.lifecycle.failed(pick_id, "it could not be posted")  # nothing to resume
            raise
        await self.service.delivered(pick_id, message.id)

    @guarded
    async def cancel_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        """Under a job waiting in the queue: take it out (its requester, or an admin)."""
        generation = await self.service.store.get(generation_id)
        if not access.may_remove(self.settings, interaction, generation):
            raise BadInput("Only the person who asked for this image, or an admin, can cancel it.")
        if not self.service.cancel(generation_id):
            raise BadInput(messages.STARTED)
        # Said on the clicked message itself: after a restart no delivery follows that message any more.
        await interaction.response.edit_message(content=messages.CANCELLED, view=None)
        log.info("job %s cancelled by user %s", generation_id, interaction.user.id)

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
        # Same prompt, size, steps and number of images, new seeds; the clicker's own limits apply.
        request = access.draw_request(self.here(interaction), interaction, generation.prompt, size=generation.size,
                                      steps=generation.steps, parent_id=generation.id,
                                      count=max(1, generation.count))
        await self.delivery.draw(interaction, request)
