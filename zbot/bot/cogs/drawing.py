"""Making images: /draw, /reroll, the "Reroll" message menu, and the Reroll and Delete buttons under
every image. Each command is one method holding its options and its body."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from zbot.bot import access, messages, uploads
from zbot.bot.delivery import Delivery
from zbot.bot.errors import guarded
from zbot.bot.i18n import localize_view
from zbot.bot.posting import NO_MENTIONS, Poster
from zbot.config import SEED_LIMIT, Settings
from zbot.core.jobs import BadInput, DrawRequest, Generation, Status
from zbot.core.picking import Picker
from zbot.core.service import Service

log = logging.getLogger(__name__)


ImageView = Callable[[int, int, int], discord.ui.View]  # (job id, width, height) -> the buttons under an image


class Drawing(commands.Cog):
    """The commands and buttons that draw. The parts it shares with the rest of the bot (the Poster,
    the Delivery, the buttons under images) are built once by the client (zbot.bot.client) and handed in."""

    def __init__(self, client: discord.Client, settings: Settings, service: Service, *, poster: Poster,
                 delivery: Delivery, image_view: ImageView):
        self.client = client
        self.settings = settings
        self.service = service
        self.poster = poster
        self.delivery = delivery
        self.image_view = image_view
        # Sizes and counts are the configuration's: this instance's own /draw, made from them.
        self.draw = self._draw_command(settings)
        self.reroll_menu = app_commands.ContextMenu(name="Reroll", callback=self.reroll_message)
        self.reroll_menu.guild_only = True
        self.from_image_menu = app_commands.ContextMenu(name="Draw from this image", callback=self.draw_from_message)
        self.from_image_menu.guild_only = True

    def here(self, interaction: discord.Interaction) -> Settings:
        """The settings of the server the interaction comes from (its /settings on the environment's)."""
        return self.service.settings_for(interaction.guild_id)

    async def cog_load(self) -> None:
        self.client.tree.add_command(self.draw)
        self.client.tree.add_command(self.reroll_menu)
        self.client.tree.add_command(self.from_image_menu)

    async def cog_unload(self) -> None:
        self.client.tree.remove_command(self.draw.name)
        self.client.tree.remove_command(self.reroll_menu.name, type=self.reroll_menu.type)
        self.client.tree.remove_command(self.from_image_menu.name, type=self.from_image_menu.type)

    # -- commands ----------------------------------------------------------------------------

    def _draw_command(self, settings: Settings) -> app_commands.Command:
        """/draw, with the configured sizes as its choices and ZBOT_MAX_COUNT as its count's maximum."""

        @app_commands.describe(prompt="What to draw", size="The image's shape (default: the first one)",
                               seed="A number to repeat an image exactly (random when left out)",
                               count="How many images to choose from (seeds seed, seed+1, ...); each counts",
                               style="A look the bot offers, such as watercolor (default: this server's)",
                               image="A picture of your own to draw from (PNG, JPEG, WebP or GIF)",
                               strength="With an image: how much of it is redrawn, 0.1-1 (default: Vary's)")
        @app_commands.choices(size=[app_commands.Choice(name=f"{name} ({w}×{h})", value=name)
                                    for name, (w, h) in list(settings.size_table.items())[:25]])
        @app_commands.guild_only()
        async def draw(interaction: discord.Interaction, prompt: str, size: str | None = None,
                       seed: app_commands.Range[int, 0, SEED_LIMIT - 1] | None = None,
                       count: int | None = None, style: str | None = None, image: discord.Attachment | None = None,
                       strength: app_commands.Range[float, 0.1, 1.0] | None = None) -> None:
            request = access.draw_request(self.here(interaction), interaction, prompt, size=size, seed=seed,
                                          count=count, style=style)
            if image is not None:  # downloaded inside Delivery's acknowledgement budget (Discord's 3 s)
                await self.delivery.draw(interaction, self._with_upload(interaction, request, image, strength))
                return
            await self.delivery.draw(interaction, request)

        # discord.py reads the options from the callback's annotations, and a string annotation (this module
        # has `from __future__ import annotations`) can only name module globals: the count's bounds, which
        # are this configuration's, go in as an object.
        draw.__annotations__["count"] = app_commands.Range[int, 1, settings.max_count] | None
        command = app_commands.command(name="draw", description="Draw an image from a prompt")(draw)
        command.autocomplete("style")(self.style_choices)
        return command

    async def _with_upload(self, interaction: discord.Interaction, request: DrawRequest,
                           image: discord.Attachment, strength: float | None) -> DrawRequest:
        """The request drawn from the attached picture (downloaded within the caps; the Service checks it)."""
        data = await uploads.download(image)
        return dataclasses.replace(request, from_image=data, strength=strength,
                                   flagged_ok=await self.poster.age_restricted(interaction.channel_id))

    async def style_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The styles this server offers whose name or description holds what was typed, each shown with
        its description (Discord shows at most 25, each at most 100 characters)."""
        typed = current.casefold().strip()
        return [app_commands.Choice(name=f"{name} · {style.description}"[:100] if style.description else name,
                                    value=name)
                for name, style in self.here(interaction).styles.items()
                if typed in name.casefold() or typed in style.description.casefold()][:25]

    @app_commands.command(name="reroll", description="Draw your latest image in this channel again with a new seed")
    @app_commands.guild_only()
    async def reroll(self, interaction: discord.Interaction) -> None:
        generation = await self.service.latest_job(interaction.user.id, interaction.channel_id)
        if generation is None:
            raise BadInput("reroll.none")
        await self._reroll(interaction, generation)

    async def reroll_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu Apps > Reroll, on any image zbot posted."""
        generation = await self.service.job_by_message(message.id)
        if generation is None or message.author.id != self.client.user.id:
            raise BadInput("reroll.not_zbot")
        await self._reroll(interaction, generation)

    async def draw_from_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu Apps > Draw from this image, on any message with a picture: a form for the prompt."""
        attachment = uploads.image_of(message)
        await interaction.response.send_modal(uploads.DrawFromImageForm(
            attachment, self.settings.max_prompt_chars, self._draw_from, interaction.locale))

    async def _draw_from(self, interaction: discord.Interaction, prompt: str, attachment: discord.Attachment) -> None:
        request = access.draw_request(self.here(interaction), interaction, prompt)
        await self.delivery.draw(interaction, self._with_upload(interaction, request, attachment, None))

    # -- buttons -----------------------------------------------------------------------------

    @guarded
    async def reroll_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        access.check_place(self.settings, interaction)
        generation = await self.service.job(generation_id)
        if generation is None or generation.status in (Status.FAILED, Status.REJECTED, Status.CANCELLED):
            raise BadInput("reroll.gone")
        await self._reroll(interaction, generation)

    @guarded
    async def pick_button(self, interaction: discord.Interaction, generation_id: int, index: int) -> None:
        """Button N under a grid: image N alone, at full size, with the single-image buttons; posted from
        the kept file (checked again first), or drawn again from its seed when that is gone."""
        access.check_place(self.settings, interaction)
        picked = await self.service.pick(
            generation_id, index, Picker(interaction.user.id, interaction.guild_id, interaction.channel_id,
                                         interaction.id),
            may_pick=lambda grid: access.may_remove(self.settings, interaction, grid),
            flagged_shown=lambda: self.poster.age_restricted(interaction.channel_id),
            # Nothing shown yet; the image comes as a message of its own.
            checking=lambda: interaction.response.defer())
        grid, seed = picked.grid, picked.seed
        if picked.redraw:
            request = access.draw_request(self.here(interaction), interaction, grid.prompt, size=grid.size, seed=seed,
                                          steps=grid.steps, parent_id=grid.id, count=1, operation="pick")
            await self.delivery.draw(interaction, request)
            return
        if picked.withheld:
            raise BadInput(messages.WITHHELD_PICK)  # answered privately
        try:
            message = await interaction.followup.send(
                messages.picked(grid.prompt, seed, index, grid.size or "", grid.width, grid.height,
                                interaction.user.id, locale=interaction.locale),
                file=discord.File(io.BytesIO(picked.png), filename=f"zbot-{seed}.png", spoiler=picked.spoiler),
                view=localize_view(self.image_view(picked.job_id, grid.width, grid.height), interaction.locale),
                allowed_mentions=NO_MENTIONS, wait=True)
        except BaseException:
            await self.service.unposted(picked.job_id)  # nothing to resume: it can be clicked again
            raise
        await self.service.delivered(picked.job_id, message.id)

    @guarded
    async def cancel_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        """Under a job waiting in the queue: take it out (its requester, or an admin)."""
        generation = await self.service.job(generation_id)
        if not access.may_remove(self.settings, interaction, generation):
            raise BadInput("cancel.not_yours")
        if not self.service.cancel(generation_id):
            raise BadInput(messages.STARTED)
        # Said on the clicked message itself: after a restart no delivery follows that message any more.
        await interaction.response.edit_message(content=messages.CANCELLED, view=None)
        log.info("job %s cancelled by user %s", generation_id, interaction.user.id)

    @guarded
    async def delete_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        access.check_place(self.settings, interaction)
        generation = await self.service.job(generation_id)
        if generation is not None and generation.message_id not in (None, interaction.message.id):
            raise BadInput("button.wrong")
        if not access.may_remove(self.settings, interaction, generation):
            raise BadInput("delete.not_yours")
        await interaction.response.defer()
        await interaction.message.delete()
        if generation is not None:
            await self.service.delete(generation.id)
            log.info("job %s deleted by user %s", generation.id, interaction.user.id)

    # -- shared --------------------------------------------------------------------------------

    async def _reroll(self, interaction: discord.Interaction, generation: Generation) -> None:
        if generation.status == Status.DELETED:
            raise BadInput("reroll.deleted")
        # Same prompt, size, steps and number of images, new seeds; the clicker's own limits apply.
        request = access.draw_request(self.here(interaction), interaction, generation.prompt, size=generation.size,
                                      steps=generation.steps, parent_id=generation.id,
                                      count=max(1, generation.count))
        await self.delivery.draw(interaction, request)
