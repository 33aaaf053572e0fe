"""Images made from an image already drawn: a variation, an upscale, an edited prompt, another size,
or a reroll of one of those. Plain values in, plain values out; every front end shares these rules.

`plan` turns a request on a parent image into what to draw and what it costs; `source_of` finds the
image an image-to-image job starts from: the kept PNG while it is kept (zbot.core.drawn, for
ZBOT_KEEP_IMAGES_DAYS after the post), else a spec that draws it again from its seed, exactly.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PIL import Image

from zbot.catalogue import items
from zbot.config import Settings
from zbot.core.jobs import (
    IMAGES,
    PAN_DIRECTIONS,
    REFINING,
    UPSCALE_MAX_SIDE,
    BadInput,
    DrawRequest,
    Generation,
    NewJob,
    Operation,
    RenderSpec,
    Source,
    Status,
    panned_size,
    upscaled_size,
)
from zbot.core.reframe import ZOOM_FACTORS
from zbot.core.store import Store
from zbot.core.validation import cost_of

MAX_REDRAW_DEPTH = 4  # a variation of a variation of...: how far back a source no longer kept is redrawn


@dataclass(frozen=True)
class Plan:
    """A request with the parent's prompt, seed and size filled in (validated next like any other), and
    the columns validation can't know: the size in pixels (outside the size table for an upscale), the
    cost, and for image to image the strength and the image it starts from."""

    request: DrawRequest
    width: int
    height: int
    cost: int
    strength: float | None = None
    source_id: int | None = None
    source_index: int | None = None
    factor: float | None = None  # Zoom out
    direction: str | None = None  # Pan
    upload: str | None = None  # an uploaded picture's hash

    def apply(self, job: NewJob) -> NewJob:
        """The validated job with what the plan knows and validation can't. `cost` is per image: an upload
        drawn as a grid counts each of its images."""
        return dataclasses.replace(job, width=self.width, height=self.height, cost=self.cost * max(1, job.count),
                                   strength=self.strength, source_id=self.source_id, source_index=self.source_index,
                                   factor=self.factor, direction=self.direction, upload=self.upload)


def closest_size(settings: Settings, width: int, height: int) -> str:
    """The configured size whose aspect ratio is closest to width:height (the first of equals): an upload
    is drawn at a size whose cost is known and whose graphs are compiled."""
    ratio = math.log(width / height)
    return min(settings.size_table, key=lambda name: abs(math.log(settings.size_table[name][0]
                                                                  / settings.size_table[name][1]) - ratio))


def plan_from_file(settings: Settings, request: DrawRequest) -> Plan:
    """An image of one's own (`/draw image:`, `POST /v1/images`, `zbot draw --from FILE`): at `size`, or the
    configured size closest to its shape, redrawn at `strength` (ZBOT_VARY_STRENGTH when not given)."""
    strength = settings.vary_strength if request.strength is None else request.strength
    if not 0 < strength <= 1:
        raise BadInput("refine.strength")
    try:
        with Image.open(io.BytesIO(request.from_image)) as image:
            width, height = image.size
    except (OSError, ValueError) as error:
        raise BadInput("refine.unreadable", {"error": error}) from None
    if min(width, height) < 16:
        raise BadInput("refine.too_small")
    if request.operation in (Operation.ZOOM, Operation.PAN):  # `zbot draw --from IMAGE --zoom-out 2 / --pan`
        return _reframe_upload(settings, request, width, height)
    size = request.size if request.size in settings.size_table else closest_size(settings, width, height)
    width, height = settings.size_table[size]
    filled = dataclasses.replace(request, operation=Operation.FROM_FILE, size=size)
    return Plan(filled, width, height, cost_of(settings, width, height), strength, upload=request.upload)


async def plan(settings: Settings, store: Store, request: DrawRequest) -> Plan | None:
    """What a request on a parent image draws; None for a request that starts from nothing (a draw, a
    reroll of a drawn-from-noise image, a grid's pick drawn again). Raises BadInput saying why not."""
    if request.from_image is not None:
        return plan_from_file(settings, request)
    operation = request.operation or (Operation.REROLL if request.parent_id is not None else Operation.DRAW)
    if request.parent_id is None or operation in (Operation.DRAW, Operation.PICK):
        return None
    parent = await store.get(request.parent_id)
    if operation == Operation.REROLL and (parent is None or not parent.refined):
        return None  # drawn from noise: the front end asked for the same prompt and size already
    if parent is None or parent.status not in IMAGES or parent.status == Status.DELETED:
        raise BadInput("refine.gone")
    if operation == Operation.REROLL:
        # Another seed for the same operation: the same source, strength, size, prompt and reframing.
        return _plan(settings, request, parent, parent.prompt, None, parent.width, parent.height,
                     parent.strength, parent.source_id, parent.source_index, count=1, same_as=parent)
    if operation not in REFINING:
        raise BadInput("refine.operation", {"operation": str(operation)[:20]})
    source_id, index, seed = await _image_of(store, parent, request.image)
    width, height = parent.width, parent.height
    if operation == Operation.VARY:  # Subtle or Strong: the front end says which strength
        strength = settings.vary_strength if request.strength is None else request.strength
        if not 0 < strength <= 1:
            raise BadInput("refine.strength")
        return _plan(settings, request, parent, parent.prompt, request.seed, width, height,  # a new seed
                     strength, source_id, index)
    if operation in (Operation.ZOOM, Operation.PAN):
        return _reframe(settings, request, operation, parent, source_id, index)
    if operation == Operation.UPSCALE:
        bigger = upscaled_size(width, height)
        if bigger[0] * bigger[1] <= width * height:
            raise BadInput("refine.too_large", {"side": UPSCALE_MAX_SIDE})
        return _plan(settings, request, parent, parent.prompt, seed, *bigger,
                     settings.upscale_strength, source_id, index)
    if operation == Operation.EDIT:
        if parent.refined and parent.count == 1:  # the same source and strength: only the words change
            return _plan(settings, request, parent, request.prompt, seed, width, height,
                         parent.strength, parent.source_id, parent.source_index, same_as=parent)
        return _plan(settings, request, parent, request.prompt, seed, width, height, None, None, None)
    # RESIZE: the prompt and seed at another configured size, drawn from noise.
    if request.size is None or request.size not in settings.size_table:
        raise BadInput("refine.sizes", {"sizes": items(settings.size_table)})
    if settings.size_table[request.size] == (width, height):
        raise BadInput("refine.same_size")
    return _plan(settings, request, parent, parent.prompt, seed, *settings.size_table[request.size],
                 None, None, None, size=request.size)


def _reframe(settings: Settings, request: DrawRequest, operation: Operation, parent: Generation, source_id: int,
             index: int) -> Plan:
    """Zoom out (the parent's size) or Pan (half again one way; refused at the cap): the parent's prompt,
    a new seed, the new part painted from noise (strength 1)."""
    factor = direction = None
    width, height = parent.width, parent.height
    if operation == Operation.ZOOM:
        factor = request.factor
        if factor not in ZOOM_FACTORS:
            raise BadInput("reframe.factor", {"factors": items(f"{f:g}" for f in ZOOM_FACTORS)})
    else:
        direction = request.direction
        if direction not in PAN_DIRECTIONS:
            raise BadInput("reframe.direction", {"directions": items(PAN_DIRECTIONS)})
        panned = panned_size(width, height, direction)
        if panned is None:
            raise BadInput("reframe.pan_cap", {"side": UPSCALE_MAX_SIDE})
        width, height = panned
    request = dataclasses.replace(request, factor=factor, direction=direction)
    return _plan(settings, request, parent, parent.prompt, request.seed, width, height, 1.0, source_id, index)


def fit_for_reframe(image: Image.Image) -> Image.Image:
    """An upload to Zoom out or Pan as kept: within UPSCALE_MAX_SIDE, both sides multiples of 16."""
    scale = min(1.0, UPSCALE_MAX_SIDE / max(image.size))
    size = (max(16, int(image.width * scale) // 16 * 16), max(16, int(image.height * scale) // 16 * 16))
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def _reframe_upload(settings: Settings, request: DrawRequest, width: int, height: int) -> Plan:
    """A Zoom out or Pan of an upload itself (kept fitted: fit_for_reframe): its own size, or half again."""
    if request.operation == Operation.ZOOM and request.factor not in ZOOM_FACTORS:
        raise BadInput("reframe.factor", {"factors": items(f"{f:g}" for f in ZOOM_FACTORS)})
    if request.operation == Operation.PAN:
        if request.direction not in PAN_DIRECTIONS:
            raise BadInput("reframe.direction", {"directions": items(PAN_DIRECTIONS)})
        panned = panned_size(width, height, request.direction)
        if panned is None:
            raise BadInput("reframe.pan_cap", {"side": UPSCALE_MAX_SIDE})
        width, height = panned
    named = request.size if request.size in settings.size_table else settings.default_size
    filled = dataclasses.replace(request, size=named, count=1)
    return Plan(filled, width, height, cost_of(settings, width, height), 1.0, factor=request.factor,
                direction=request.direction, upload=request.upload)


def _plan(settings: Settings, request: DrawRequest, parent: Generation, prompt: str, seed: int | None,
          width: int, height: int, strength: float | None, source_id: int | None, source_index: int | None,
          *, count: int = 1, size: str | None = None, same_as: Generation | None = None) -> Plan:
    # The size column names a configured size when the image is one; an upscale keeps its parent's
    # name (the caption shows its pixels), and validation checks the name, not the pixels.
    named = size or (parent.size if parent.size in settings.size_table else settings.default_size)
    # A reroll or an edit of a Zoom out, a Pan or an upload's image does what it did again.
    factor = same_as.factor if same_as else request.factor
    direction = same_as.direction if same_as else request.direction
    upload = same_as.upload if same_as else None
    filled = dataclasses.replace(request, prompt=prompt, seed=seed, size=named, steps=parent.steps, count=count,
                                 factor=factor, direction=direction, upload=upload)
    return Plan(filled, width, height, cost_of(settings, width, height), strength, source_id, source_index,
                factor, direction, upload)


async def _image_of(store: Store, parent: Generation, index: int) -> tuple[int, int, int]:
    """(generation, index, seed) of the parent's image `index`: a pick's image is its grid's."""
    if parent.operation == Operation.PICK and parent.count == 0 and parent.parent_id is not None:
        grid = await store.get(parent.parent_id)
        if grid is not None and parent.seed in grid.seeds:
            return grid.id, grid.seeds.index(parent.seed), parent.seed
    if not 0 <= index < max(1, parent.count):
        raise BadInput("pick.range", {"count": parent.count})
    return parent.id, index, parent.seeds[index]


Uploads = Callable[[str], Awaitable[bytes | None]]  # an uploaded picture's kept PNG, by its hash


async def with_parent_style(store: Store, request: DrawRequest) -> DrawRequest:
    """A request on a parent image (a reroll, a variation, an upscale, an edit, another size, a pick drawn
    again, a zoom or a pan) that names no style keeps its parent's; "" when the parent had none, so that
    the server's default style does not creep in."""
    if request.parent_id is None or request.style is not None:
        return request
    parent = await store.get(request.parent_id)
    return dataclasses.replace(request, style=(parent.style if parent is not None else None) or "")


async def render_spec(store: Store, kept: Callable[[int, int], Awaitable[bytes | None]], job: Generation,
                      depth: int = 0, uploads: Uploads | None = None) -> RenderSpec:
    """The renderer's spec for a stored job; an image-to-image job's source is read (or planned to be
    drawn again) here, so that a restart resumes it the same way."""
    if not job.refined:
        return RenderSpec.of(job.id, job)
    if job.upload is not None:  # an upload can't be drawn again: it is kept while a job needs it
        png = await uploads(job.upload) if uploads is not None else None
        if png is None:
            raise BadInput("source.not_kept")
        return RenderSpec.of(job.id, job, Source(png=png))
    return RenderSpec.of(job.id, job, await source_of(store, kept, job.source_id, job.source_index or 0, depth,
                                                      uploads))


async def source_of(store: Store, kept: Callable[[int, int], Awaitable[bytes | None]], job_id: int, index: int,
                    depth: int = 0, uploads: Uploads | None = None) -> Source:
    source = await store.get(job_id)
    if source is not None and source.status == Status.DELETED:  # removed by its owner or a moderator
        raise BadInput("source.deleted")
    png = await kept(job_id, index)
    if png is not None:
        return Source(png=png)
    if source is None or source.seed is None or depth >= MAX_REDRAW_DEPTH:
        raise BadInput("source.not_kept")
    return Source(redraw=(await render_spec(store, kept, source, depth + 1, uploads)).image(index))
