"""Showing what was drawn: the one decision about a flagged image (withheld or shown, as a spoiler or
not, and what that costs), and picking one image of a grid to show alone.

Both front ends that show images take the decision from here: the Discord poster for every drawn job
and every pick (a flagged image is shown only in an age-restricted channel), and HTTP for a key that
may have flagged images. A withheld job is recorded as blocked and still counts against its
requester's limits (the GPU drew it; otherwise asking for what gets flagged would draw without limit);
a withheld pick records nothing and costs nothing (its grid paid for it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from zbot.catalogue import text
from zbot.core.jobs import BadInput, Generation, Status


@dataclass(frozen=True)
class Showing:
    """How a finished job's `count` images are shown where they were asked for."""

    count: int
    withheld: frozenset[int] = frozenset()  # the images (from 0) not shown: flagged where that may not be
    spoiler: bool = False  # shown behind a spoiler: flagged, where the place wants spoilers

    @property
    def nothing(self) -> bool:
        """Every image withheld: nothing is shown, and the job is recorded as blocked (it still counts)."""
        return self.count > 0 and len(self.withheld) == self.count


async def showing(flags: Sequence[bool], *, spoilers: bool,
                  flagged_shown: Callable[[], Awaitable[bool]]) -> Showing:
    """The decision for images whose safety verdicts are `flags`. `flagged_shown` says whether the place
    may show flagged images (an age-restricted channel, a key that may have them); it is asked only when
    an image is flagged, since asking may take a request to Discord. `spoilers`: the place's setting."""
    if not any(flags):
        return Showing(len(flags))
    if await flagged_shown():
        return Showing(len(flags), spoiler=spoilers)
    return Showing(len(flags), withheld=frozenset(i for i, flagged in enumerate(flags) if flagged))


@dataclass(frozen=True)
class Picker:
    """Who picks an image, and where they are looking."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    interaction_id: int | None = None


@dataclass(frozen=True)
class Picked:
    """Image `index` of `grid`, to show alone. `job_id` is its own job, recorded as drawn, and `png` the
    kept image, checked again; `spoiler` as `showing` decided. With no `png` the kept image is gone: the
    front end asks for it to be drawn again from its seed (a request with operation pick). `withheld`:
    flagged where it may not be shown; nothing was recorded."""

    grid: Generation
    index: int
    job_id: int | None = None
    png: bytes | None = None
    spoiler: bool = False
    withheld: bool = False

    @property
    def seed(self) -> int:
        return self.grid.seeds[self.index]

    @property
    def redraw(self) -> bool:
        return self.png is None and not self.withheld


NOT_ON_SHOW = text("pick.gone")
NOT_YOURS = text("pick.not_yours")


def pickable(grid: Generation | None, index: int, may_pick: Callable[[Generation], bool]) -> Generation:
    """The grid, if image `index` of it may be picked; else BadInput saying why not."""
    if grid is None or not 0 <= index < grid.count or grid.status != Status.POSTED:
        raise BadInput(NOT_ON_SHOW)
    if not may_pick(grid):
        raise BadInput(NOT_YOURS)
    return grid
