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
CANCEL = ButtonKind("cancel", "Cancel", "✖️", discord.ButtonStyle.secondary)  # while a job waits in the queue
REMOVE_REPORTED = ButtonKind("remove-reported", "Delete the image", "🗑️", discord.ButtonStyle.danger)  # on a report


PickHandler = Callable[[discord.Interaction, int, int], Awaitable[None]]


def pick_custom_id(generation_id: int, index: int) -> str:
    return f"zbot:pick:{generation_id}:{index}"


def pick_type(handler: PickHandler) -> type[discord.ui.DynamicItem]:
    """Button N under a grid: post image N alone, at full size."""

    class PickButton(discord.ui.DynamicItem[discord.ui.Button], template=r"zbot:pick:(?P<id>[0-9]+):(?P<index>[0-3])"):
        def __init__(self, generation_id: int, index: int, disabled: bool = False):
            super().__init__(discord.ui.Button(label=str(index + 1), style=discord.ButtonStyle.secondary, row=0,
                                               custom_id=pick_custom_id(generation_id, index), disabled=disabled))
            self.generation_id, self.index = generation_id, index

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                                 match: re.Match[str]) -> PickButton:
            return cls(int(match["id"]), int(match["index"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            await handler(interaction, self.generation_id, self.index)

    return PickButton


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
    """The buttons zbot shows, each bound to its handler. `image_kinds`: those under every image, in order."""

    def __init__(self, handlers: dict[ButtonKind, Handler], *, pick: PickHandler | None = None,
                 image_kinds: tuple[ButtonKind, ...] = ()):
        self.types = {kind: _button_type(kind, handler) for kind, handler in handlers.items()}
        self.pick = pick_type(pick) if pick is not None else None
        self.image_kinds = image_kinds

    @property
    def all_types(self) -> list[type[discord.ui.DynamicItem]]:
        return [*self.types.values(), *([self.pick] if self.pick else [])]

    def under_image(self, generation_id: int) -> discord.ui.View:
        return self.view(generation_id, *self.image_kinds)

    def under_grid(self, generation_id: int, count: int, withheld: frozenset[int] = frozenset()) -> discord.ui.View:
        """1..count (each posts its image alone; a withheld one can't be picked), then the image buttons."""
        view = discord.ui.View(timeout=None)
        for index in range(count):
            view.add_item(self.pick(generation_id, index, disabled=index in withheld))
        for kind in self.image_kinds:
            item = self.types[kind](generation_id)
            item.item.row = 1
            view.add_item(item)
        return view

    def view(self, item_id: int, *kinds: ButtonKind) -> discord.ui.View:
        """A persistent view of these buttons, for one generation (or report)."""
        view = discord.ui.View(timeout=None)
        for kind in kinds:
            view.add_item(self.types[kind](item_id))
        return view
