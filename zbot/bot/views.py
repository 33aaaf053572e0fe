"""The buttons under every image. Their custom_id carries the generation's id, and the classes are
registered at start (discord.py's DynamicItem), so they keep working after the bot restarts."""

from __future__ import annotations

import re

import discord


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=r"zbot:reroll:(?P<id>[0-9]+)"):
    def __init__(self, generation_id: int):
        super().__init__(discord.ui.Button(label="Reroll", emoji="🎲", style=discord.ButtonStyle.primary,
                                           custom_id=f"zbot:reroll:{generation_id}"))
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> RerollButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.actions.reroll(interaction, self.generation_id)


class DeleteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"zbot:delete:(?P<id>[0-9]+)"):
    def __init__(self, generation_id: int):
        super().__init__(discord.ui.Button(label="Delete", emoji="🗑️", style=discord.ButtonStyle.secondary,
                                           custom_id=f"zbot:delete:{generation_id}"))
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> DeleteButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.actions.delete(interaction, self.generation_id)


def result_view(generation_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(generation_id))
    view.add_item(DeleteButton(generation_id))
    return view
