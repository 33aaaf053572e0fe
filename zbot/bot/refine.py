"""Refining a posted image: Vary (and V1-V4 under a grid), Upscale, Edit prompt (a form with the prompt
filled in) and the menu of other sizes. Each click becomes a request on the parent image; the core
(zbot.core.refining) fills in its prompt, seed, size and source, and the clicker's own limits apply."""

from __future__ import annotations

import dataclasses

import discord

from zbot.bot import access
from zbot.bot.delivery import Delivery
from zbot.bot.errors import answer_error, guarded
from zbot.bot.i18n import t
from zbot.config import Settings
from zbot.core.jobs import BadInput, Generation, Operation
from zbot.core.service import Service


class EditPromptForm(discord.ui.Modal, title="Edit the prompt"):
    """The image's prompt, to change; it is drawn again with the same seed and size."""

    def __init__(self, refine: Refine, generation: Generation, max_chars: int, locale=None):
        super().__init__(timeout=30 * 60, title=t(locale, "Edit the prompt"))
        self.refine = refine
        self.generation_id = generation.id
        longest = min(4000, max_chars)  # Discord's limit for a text input, and ours for a prompt
        self.prompt = discord.ui.TextInput(label=t(locale, "Prompt"), style=discord.TextStyle.paragraph, custom_id="zbot:prompt",
                                           default=generation.prompt[:longest], max_length=longest)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.refine.edited(interaction, self.generation_id, self.prompt.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await answer_error(interaction, error)


class Refine:
    def __init__(self, settings: Settings, service: Service, delivery: Delivery):
        self.settings = settings
        self.service = service
        self.delivery = delivery

    def here(self, interaction: discord.Interaction) -> Settings:
        return self.service.settings_for(interaction.guild_id)

    @guarded
    async def vary_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        await self._request(interaction, generation_id, Operation.VARY)

    @guarded
    async def vary_subtle_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        await self._request(interaction, generation_id, Operation.VARY,
                            strength=self.here(interaction).vary_subtle_strength)

    @guarded
    async def vary_one_button(self, interaction: discord.Interaction, generation_id: int, index: int) -> None:
        """V1..V4 under a grid: a variation of that image, subtle or strong (ZBOT_GRID_VARY)."""
        here = self.here(interaction)
        await self._request(interaction, generation_id, Operation.VARY, index=index,
                            strength=here.vary_subtle_strength if here.grid_vary == "subtle" else None)

    def zoom_button(self, factor: float):
        """The handler of Zoom Out `factor`x."""
        @guarded
        async def zoom(interaction: discord.Interaction, generation_id: int) -> None:
            await self._request(interaction, generation_id, Operation.ZOOM, factor=factor)
        return zoom

    def pan_button(self, direction: str):
        """The handler of the Pan button towards `direction`."""
        @guarded
        async def pan(interaction: discord.Interaction, generation_id: int) -> None:
            await self._request(interaction, generation_id, Operation.PAN, direction=direction)
        return pan

    @guarded
    async def upscale_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        await self._request(interaction, generation_id, Operation.UPSCALE)

    @guarded
    async def edit_button(self, interaction: discord.Interaction, generation_id: int) -> None:
        """The form first (it must be the interaction's answer); the request when it is sent."""
        parent = await self._parent(interaction, generation_id)
        await interaction.response.send_modal(EditPromptForm(self, parent, self.settings.max_prompt_chars, interaction.locale))

    async def edited(self, interaction: discord.Interaction, generation_id: int, prompt: str) -> None:
        await self._request(interaction, generation_id, Operation.EDIT, prompt=prompt)

    @guarded
    async def size_chosen(self, interaction: discord.Interaction, generation_id: int, size: str) -> None:
        await self._request(interaction, generation_id, Operation.RESIZE, size=size)

    async def _parent(self, interaction: discord.Interaction, generation_id: int) -> Generation:
        access.check_place(self.settings, interaction)
        parent = await self.service.job(generation_id)
        if parent is None or (parent.guild_id is not None and parent.guild_id != interaction.guild_id
                              and not access.is_owner(self.settings, interaction)):
            raise BadInput("refine.image_gone")
        return parent

    async def _request(self, interaction: discord.Interaction, generation_id: int, operation: Operation, *,
                       index: int = 0, prompt: str | None = None, size: str | None = None, **reframing) -> None:
        """`reframing`: a Vary's strength, a Zoom out's factor, a Pan's direction."""
        parent = await self._parent(interaction, generation_id)
        request = access.draw_request(self.here(interaction), interaction, parent.prompt if prompt is None else prompt,
                                      size=size, parent_id=parent.id, operation=operation, image=index)
        request = dataclasses.replace(request, **reframing)
        await self.delivery.draw(interaction, request)
