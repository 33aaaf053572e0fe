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

from zbot.core.jobs import Result, panned_size, upscaled_size

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
VARY = ButtonKind("vary", "Vary (Strong)", "🔀", discord.ButtonStyle.secondary)  # "vary": the one Vary before issue 28
VARY_SUBTLE = ButtonKind("vary-subtle", "Vary (Subtle)", "🔀", discord.ButtonStyle.secondary)
ZOOM_2 = ButtonKind("zoom-2", "Zoom Out 2x", "🔭", discord.ButtonStyle.secondary)
ZOOM_15 = ButtonKind("zoom-15", "Zoom Out 1.5x", "🔭", discord.ButtonStyle.secondary)
PAN_LEFT = ButtonKind("pan-left", "Pan", "⬅️", discord.ButtonStyle.secondary)
PAN_RIGHT = ButtonKind("pan-right", "Pan", "➡️", discord.ButtonStyle.secondary)
PAN_UP = ButtonKind("pan-up", "Pan", "⬆️", discord.ButtonStyle.secondary)
PAN_DOWN = ButtonKind("pan-down", "Pan", "⬇️", discord.ButtonStyle.secondary)
ZOOMS = {ZOOM_2: 2.0, ZOOM_15: 1.5}
PANS = {PAN_LEFT: "left", PAN_RIGHT: "right", PAN_UP: "up", PAN_DOWN: "down"}
UPSCALE = ButtonKind("upscale", "Upscale", "🔍", discord.ButtonStyle.secondary)
EDIT = ButtonKind("edit", "Edit prompt", "✏️", discord.ButtonStyle.secondary)
DELETE = ButtonKind("delete", "Delete", "🗑️", discord.ButtonStyle.secondary)
REPORT = ButtonKind("report", "Report", "🚩", discord.ButtonStyle.secondary)
CANCEL = ButtonKind("cancel", "Cancel", "✖️", discord.ButtonStyle.secondary)  # while a job waits in the queue
REMOVE_REPORTED = ButtonKind("remove-reported", "Delete the image", "🗑️", discord.ButtonStyle.danger)  # on a report
BAN_REPORTED = ButtonKind("ban-reported", "Ban from zbot", "⛔", discord.ButtonStyle.danger)  # a report's requester


IndexHandler = Callable[[discord.Interaction, int, int], Awaitable[None]]
SizeHandler = Callable[[discord.Interaction, int, str], Awaitable[None]]


@dataclass(frozen=True)
class IndexedKind:
    """A button per image of a grid: `zbot:pick:42:0` posts image 1 alone, `zbot:vary:42:0` varies it."""

    action: str
    prefix: str  # the label is the prefix and the image's number: "1", "V1"

    def custom_id(self, generation_id: int, index: int) -> str:
        return f"zbot:{self.action}:{generation_id}:{index}"


PICK = IndexedKind("pick", "")
VARY_ONE = IndexedKind("vary", "V")  # the same action as VARY: a single image's Vary is image 0's


def pick_custom_id(generation_id: int, index: int) -> str:
    return PICK.custom_id(generation_id, index)


def indexed_type(kind: IndexedKind, handler: IndexHandler) -> type[discord.ui.DynamicItem]:
    class IndexedButton(discord.ui.DynamicItem[discord.ui.Button],
                        template=rf"zbot:{kind.action}:(?P<id>[0-9]+):(?P<index>[0-3])"):
        def __init__(self, generation_id: int, index: int, disabled: bool = False, row: int | None = None):
            super().__init__(discord.ui.Button(label=f"{kind.prefix}{index + 1}", style=discord.ButtonStyle.secondary,
                                               row=row, custom_id=kind.custom_id(generation_id, index),
                                               disabled=disabled))
            self.generation_id, self.index = generation_id, index

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                                 match: re.Match[str]) -> IndexedButton:
            return cls(int(match["id"]), int(match["index"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            await handler(interaction, self.generation_id, self.index)

    IndexedButton.__name__ = IndexedButton.__qualname__ = f"{kind.action.title()}IndexButton"
    return IndexedButton


def size_select_type(sizes: dict[str, tuple[int, int]], handler: SizeHandler) -> type[discord.ui.DynamicItem]:
    """A menu of the configured sizes under an image (`zbot:size:42`): the same prompt and seed in
    another shape. The choice arrives as the size's name."""

    class SizeSelect(discord.ui.DynamicItem[discord.ui.Select], template=r"zbot:size:(?P<id>[0-9]+)"):
        def __init__(self, generation_id: int, current: tuple[int, int] | None = None, row: int | None = None):
            options = [discord.SelectOption(label=f"{name} ({w}×{h})"[:100], value=name)
                       for name, (w, h) in list(sizes.items())[:25] if (w, h) != current]
            super().__init__(discord.ui.Select(custom_id=f"zbot:size:{generation_id}", row=row,
                                               placeholder="Another size…", options=options or [
                                                   discord.SelectOption(label="-", value="-")]))
            self.generation_id = generation_id

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select,
                                 match: re.Match[str]) -> SizeSelect:
            return cls(int(match["id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            values = (interaction.data or {}).get("values") or [""]
            await handler(interaction, self.generation_id, values[0])

    return SizeSelect


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
    """The buttons zbot shows, each bound to its handler. `image_kinds`: the rows of buttons under every
    image; `grid_kinds`: the row under a grid, after its numbered rows."""

    def __init__(self, handlers: dict[ButtonKind, Handler], *, indexed: dict[IndexedKind, IndexHandler] | None = None,
                 sizes: dict[str, tuple[int, int]] | None = None, size_handler: SizeHandler | None = None,
                 image_kinds: tuple[tuple[ButtonKind, ...], ...] = (), grid_kinds: tuple[ButtonKind, ...] = ()):
        self.types = {kind: _button_type(kind, handler) for kind, handler in handlers.items()}
        self.indexed = {kind: indexed_type(kind, handler) for kind, handler in (indexed or {}).items()}
        self.sizes = sizes or {}
        self.size_select = size_select_type(self.sizes, size_handler) if size_handler is not None else None
        self.image_kinds = image_kinds
        self.grid_kinds = grid_kinds

    @property
    def pick(self) -> type[discord.ui.DynamicItem] | None:
        return self.indexed.get(PICK)

    @property
    def all_types(self) -> list[type[discord.ui.DynamicItem]]:
        return [*self.types.values(), *self.indexed.values(), *([self.size_select] if self.size_select else [])]

    def under_image(self, generation_id: int, size: tuple[int, int] | None = None,
                    disabled: frozenset[ButtonKind] = frozenset()) -> discord.ui.View:
        """The image buttons, a row per group, then the menu of the other sizes (`size`: this image's)."""
        view = discord.ui.View(timeout=None)
        for row, kinds in enumerate(self.image_kinds):
            for kind in kinds:
                item = self.types[kind](generation_id)
                item.item.row, item.item.disabled = row, kind in disabled
                view.add_item(item)
        if self.size_select is not None and any(dims != size for dims in self.sizes.values()):
            view.add_item(self.size_select(generation_id, size, row=len(self.image_kinds)))
        return view

    def under_grid(self, generation_id: int, count: int, withheld: frozenset[int] = frozenset()) -> discord.ui.View:
        """A row per numbered kind (1..count posts that image alone, V1..count varies it; a withheld one
        can't be used), then the grid's buttons."""
        view = discord.ui.View(timeout=None)
        for row, button in enumerate(self.indexed.values()):
            for index in range(count):
                view.add_item(button(generation_id, index, disabled=index in withheld, row=row))
        for kind in self.grid_kinds:
            item = self.types[kind](generation_id)
            item.item.row = len(self.indexed)
            view.add_item(item)
        return view

    def view(self, item_id: int, *kinds: ButtonKind) -> discord.ui.View:
        """A persistent view of these buttons, for one generation (or report)."""
        view = discord.ui.View(timeout=None)
        for kind in kinds:
            view.add_item(self.types[kind](item_id))
        return view


def image_view(buttons: Buttons, generation_id: int, width: int, height: int) -> discord.ui.View:
    """The buttons under a posted image: Upscale greyed out at the largest size, a Pan where that side is
    at the cap."""
    bigger = upscaled_size(width, height)
    disabled = {UPSCALE} if bigger[0] * bigger[1] <= width * height else set()
    disabled |= {kind for kind, direction in PANS.items() if panned_size(width, height, direction) is None}
    return buttons.under_image(generation_id, (width, height), disabled=frozenset(disabled))


def result_view(buttons: Buttons, result: Result, withheld: frozenset[int]) -> discord.ui.View:
    """The buttons under a posted job: an image's, or a grid's (a withheld image's greyed out)."""
    if result.count == 1:
        return image_view(buttons, result.job_id, result.width, result.height)
    return buttons.under_grid(result.job_id, result.count, withheld)
