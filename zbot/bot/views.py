"""The buttons under every image. A button's custom_id carries its action and the generation's id
(`zbot:reroll:42`), and a class per action is registered at start (discord.py's DynamicItem), so the
buttons keep working after the bot restarts.

The classes are made by `Buttons` from the handlers a cog gives it: a click reaches its handler
directly, not through the client object.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

Handler = Callable[[discord.Interaction, int], Awaitable[None]]


@dataclass(frozen=True)
class ButtonKind:
    action: str  # the custom_id's middle part: never rename one, old messages carry it
    label: str
    emoji: str
    style: discord.ButtonStyle

    def custom_id(self, generation_id: int) -> str:
        return f"zbot:{self.action}:{generation_id}"


REROLL = ButtonKind("reroll", "Reroll", "🎲", discord.ButtonStyle.primary)
DELETE = ButtonKind("delete", "Delete", "🗑️", discord.ButtonStyle.secondary)
REPORT = ButtonKind("report", "Report", "🚩", discord.ButtonStyle.secondary)
REMOVE_REPORTED = ButtonKind("remove-reported", "Delete the image", "🗑️", discord.ButtonStyle.danger)  # on a report


def _button_type(kind: ButtonKind, handler: Handler) -> type[discord.ui.DynamicItem]:
    class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"zbot:{kind.action}:(?P<id>[0-9]+)"):
        def __init__(self, generation_id: int):
            super().__init__(discord.ui.Button(label=kind.label, emoji=kind.emoji, style=kind.style,
                                               custom_id=kind.custom_id(generation_id)))
            self.generation_id = generation_id

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                                 match: re.Match[str]) -> JobButton:
            return cls(int(match["id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            await handler(interaction, self.generation_id)

    JobButton.__name__ = JobButton.__qualname__ = f"{kind.label}Button"
    return JobButton


class Buttons:
    """The buttons under an image, each bound to its handler, in the order they are shown."""

    def __init__(self, handlers: dict[ButtonKind, Handler]):
        self.types = {kind: _button_type(kind, handler) for kind, handler in handlers.items()}

    def under_image(self, generation_id: int) -> discord.ui.View:
        return self.view(generation_id, *self.types)

    def view(self, item_id: int, *kinds: ButtonKind) -> discord.ui.View:
        """A persistent view of these buttons, for one generation (or report)."""
        view = discord.ui.View(timeout=None)
        for kind in kinds:
            view.add_item(self.types[kind](item_id))
        return view
