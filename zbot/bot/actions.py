"""What each command and button does. Every handler runs inside `guarded`, the one place that turns
errors into replies (see context.answer_error)."""

from __future__ import annotations

import asyncio
import functools
import io
import time

import discord

from ..chart import per_day_chart
from ..config import Settings
from ..jobs import BadInput, Generation
from ..service import Service
from ..usage import usage_report
from . import context, messages
from .delivery import Delivery


def guarded(handler):
    @functools.wraps(handler)
    async def wrapper(self, interaction: discord.Interaction, *args, **kwargs):
        try:
            await handler(self, interaction, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - answered, and logged when unexpected
            await context.answer_error(interaction, error)

    return wrapper


class Actions:
    def __init__(self, settings: Settings, service: Service, delivery: Delivery):
        self.settings = settings
        self.service = service
        self.delivery = delivery

    @guarded
    async def draw(self, interaction: discord.Interaction, prompt: str, size: str | None = None,
                   seed: int | None = None) -> None:
        request = context.draw_request(self.settings, interaction, prompt, size=size, seed=seed)
        await self.delivery.draw(interaction, request)

    @guarded
    async def reroll(self, interaction: discord.Interaction, generation_id: int) -> None:
        generation = await self.service.store.get(generation_id)
        if generation is None or generation.status != "done":
            raise BadInput("That image is no longer in my records, so it can't be rerolled; use /draw.")
        await self._reroll(interaction, generation)

    @guarded
    async def reroll_latest(self, interaction: discord.Interaction) -> None:
        generation = await self.service.store.latest_for(interaction.user.id, interaction.channel_id)
        if generation is None:
            raise BadInput("You have no image in this channel to reroll yet; use /draw first.")
        await self._reroll(interaction, generation)

    @guarded
    async def reroll_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        generation = await self.service.store.by_message(message.id)
        if generation is None or message.author.id != interaction.client.user.id:
            raise BadInput("That message isn't a zbot image; Reroll works on images I posted.")
        await self._reroll(interaction, generation)

    async def _reroll(self, interaction: discord.Interaction, generation: Generation) -> None:
        # Same prompt, size and steps, a new seed; the clicker's own limits apply.
        request = context.draw_request(self.settings, interaction, generation.prompt, size=generation.size,
                                       steps=generation.steps, parent_id=generation.id)
        await self.delivery.draw(interaction, request)

    @guarded
    async def delete(self, interaction: discord.Interaction, generation_id: int) -> None:
        generation = await self.service.store.get(generation_id)
        owner = generation.user_id if generation else None
        if interaction.user.id != owner and not context.is_admin(self.settings, interaction):
            raise BadInput("Only the person who asked for this image, or an admin, can delete it.")
        await interaction.response.defer()
        await interaction.message.delete()

    @guarded
    async def quota(self, interaction: discord.Interaction) -> None:
        role_id, windows = context.tier(self.settings, interaction)
        quota = await self.service.quota(interaction.user.id, windows)
        if context.is_admin(self.settings, interaction):
            text = messages.quota(quota, "admin: no per-user limits apply to you")
        else:
            text = messages.quota(quota, context.tier_name(interaction, role_id))
        await context.say_privately(interaction, text)

    @guarded
    async def stats(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        if not context.is_admin(self.settings, interaction):
            raise BadInput("Only admins can see usage statistics.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await usage_report(self.service.store, now=time.time(), user_id=user.id if user else None)
        title = f"Usage of {user.display_name}" if user else "zbot usage"
        embed = messages.stats_embed(report, self.service.executor.depth, title)
        files = []
        if report.per_day:
            chart = await asyncio.to_thread(per_day_chart, report.per_day)
            files.append(discord.File(io.BytesIO(chart), filename="per-day.png"))
            embed.set_image(url="attachment://per-day.png")
        await interaction.followup.send(embed=embed, files=files, ephemeral=True,
                                        allowed_mentions=discord.AllowedMentions.none())
