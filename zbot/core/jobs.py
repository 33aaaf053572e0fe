"""Plain values that flow between the front ends and the core. Nothing here knows Discord."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from zbot.catalogue import MESSAGES, Text


class Status(StrEnum):
    """Where a job is in its life; zbot.core.lifecycle is the one place that moves it along.

    queued -> running -> drawn -> posted (-> deleted), or failed / cancelled / blocked on the way.
    Refused requests never enter the queue, nor the table: they are counted (Store.count_refusal).
    "drawn" and "posted" are separate: a drawn image is kept beside the database until it is posted, so
    a failed post or a restart in between loses nothing."""

    QUEUED = "queued"
    RUNNING = "running"
    DRAWN = "drawn"  # rendered; its PNG waits in the drawn-images folder until it is delivered
    POSTED = "posted"  # delivered: posted on Discord, returned over HTTP, written by the CLI
    DELETED = "deleted"  # posted, then deleted by its requester or an admin
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # drawn, but withheld: the safety check flagged it (it counts: the GPU did the work)
    REJECTED = "rejected"  # refused, in databases before migration 0009; none are written now


PENDING = (Status.QUEUED, Status.RUNNING)  # waiting for the GPU
UNDELIVERED = (Status.QUEUED, Status.RUNNING, Status.DRAWN)  # someone still expects an image
IMAGES = (Status.DRAWN, Status.POSTED, Status.DELETED)  # an image was made
# What counts against a user's limits: not failed or cancelled jobs, but a flagged image does, withheld or
# not (the GPU drew it; otherwise asking for what gets flagged would draw without limit).
COUNTED = PENDING + IMAGES + (Status.BLOCKED,)
# Row ids as SQLite stores them (signed 64-bit): an id from outside (a URL, a button, the command line)
# beyond these names no row, and would make sqlite3 raise OverflowError.
MIN_ID, MAX_ID = -(2**63), 2**63 - 1


def sql_set(statuses: tuple[Status, ...]) -> str:
    """An SQL list of status values: "('queued', 'running')"."""
    return "(" + ", ".join(f"'{status.value}'" for status in statuses) + ")"


@dataclass(frozen=True)
class DrawRequest:
    """What someone asked for, before validation. seed/steps None mean "pick for me"."""

    user_id: int
    prompt: str
    size: str | None = None
    seed: int | None = None
    steps: int | None = None
    source: str = "discord"
    guild_id: int | None = None
    channel_id: int | None = None
    interaction_id: int | None = None
    parent_id: int | None = None  # the generation this one rerolls or refines
    count: int | None = None  # images of consecutive seeds; None: the configured default
    operation: str | None = None  # what the row records (zbot.core.jobs.Operation); None: draw, or reroll with a parent
    image: int = 0  # which of the parent's images an operation on one image (vary, upscale...) starts from
    from_image: bytes | None = None  # an image file to start from (/draw image:, `zbot draw --from`), at `strength`
    strength: float | None = None
    factor: float | None = None  # Zoom out: how much the picture shrinks (2 or 1.5; zbot.core.reframe)
    direction: str | None = None  # Pan: which way the canvas grows (PAN_DIRECTIONS)
    upload: str | None = None  # set by the Service: the kept upload (from_image) this draws from, by hash
    flagged_ok: bool = False  # an upload the safety check flags may be drawn from (an age-restricted channel)
    style: str | None = None  # a configured style's name (zbot.core.styles); None: the server's default
    is_admin: bool = False
    # The windows that apply to this user (role tiers); None means the configured default.
    rate_limits: tuple | None = None


class Operation(StrEnum):
    """What made a generation: the `operation` column, counted by /stats."""

    DRAW = "draw"
    REROLL = "reroll"  # the parent's prompt and size, new seeds
    PICK = "pick"  # one image of a grid, posted on its own
    VARY = "vary"  # img2img of the parent's image, a new seed
    UPSCALE = "upscale"  # img2img of the parent's image enlarged (2x per side, at most UPSCALE_MAX_SIDE)
    EDIT = "edit"  # the parent redrawn with an edited prompt, same seed and size (and source image)
    RESIZE = "size"  # the parent's prompt and seed at another configured size
    FROM_FILE = "file"  # img2img of an image file (`zbot draw --from`, /draw image:, POST /v1/images)
    ZOOM = "zoom"  # the parent's image shrunk into its own canvas, the border painted (inpainting), a new seed
    PAN = "pan"  # the parent's canvas grown by half one way, the new strip painted, a new seed


REFINING = (Operation.VARY, Operation.UPSCALE, Operation.EDIT, Operation.RESIZE, Operation.ZOOM, Operation.PAN)  # one image of a parent
UPSCALE_MAX_SIDE = 2048  # the model draws well up to 2048x2048 and fails at 4096x4096


def upscaled_size(width: int, height: int, max_side: int = UPSCALE_MAX_SIDE) -> tuple[int, int]:
    """Twice as large per side, the longer side at most `max_side`, both sides multiples of 16."""
    scale = min(2.0, max_side / max(width, height))
    return int(width * scale) // 16 * 16, int(height * scale) // 16 * 16


PAN_DIRECTIONS = ("left", "right", "up", "down")


def panned_size(width: int, height: int, direction: str, max_side: int = UPSCALE_MAX_SIDE) -> tuple[int, int] | None:
    """The canvas of a Pan: half as long again in `direction`, within multiples of 16 and `max_side`;
    None when that side is at the cap already (the front end greys the button out)."""
    if direction not in PAN_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(PAN_DIRECTIONS)}, not {direction!r}")
    side = width if direction in ("left", "right") else height
    longer = min(max_side, side + side // 2) // 16 * 16
    if longer <= side:
        return None
    return (longer, height) if direction in ("left", "right") else (width, longer)


def denoising_steps(steps: int, strength: float | None) -> int:
    """The steps an img2img render really runs at this strength: diffusers skips the first
    (1 - strength) of the schedule (ZImageImg2ImgPipeline.get_timesteps). All of them without a source."""
    if strength is None:
        return steps
    return steps - int(max(steps - min(steps * strength, steps), 0))


SEED_SPACE = 2**32


def seeds_from(seed: int, count: int) -> list[int]:
    """The seeds of a job of `count` images: seed, seed + 1, ... (wrapping past 2**32 - 1 to 0)."""
    return [(seed + index) % SEED_SPACE for index in range(count)]


@dataclass(frozen=True)
class NewJob:
    """A validated request as its admission writes it: each field is the generations column of the same
    name, inserted by name (Store.insert_job refuses a field with no column rather than drop it). Made by
    zbot.core.validation.validate, completed by zbot.core.refining's Plan, admitted by limits.admit."""

    user_id: int
    prompt: str
    seed: int
    size: str
    width: int
    height: int
    steps: int
    source: str = "discord"
    guild_id: int | None = None
    channel_id: int | None = None
    interaction_id: int | None = None
    parent_id: int | None = None
    count: int = 1
    operation: str = "draw"  # an Operation
    cost: int = 1  # images of work it counts against its requester's limits
    strength: float | None = None  # image to image: how much of the source is redrawn...
    source_id: int | None = None  # ...of which generation's image...
    source_index: int | None = None  # ...and which of its images
    factor: float | None = None  # Zoom out: the source shrunk by this into its own canvas (inpainted)
    direction: str | None = None  # Pan: the source's canvas grown by half this way (inpainted)
    upload: str | None = None  # drawn from an uploaded picture: its hash (zbot.core.drawn keeps it)
    style: str | None = None  # the style's name (ZBOT_STYLES); the prompt column keeps what the user typed
    owner: str | None = None  # the process (zbot.core.instance) that holds it; set by the Service


# The DrawRequest fields that steer an admission but are no column: every other field of DrawRequest is a
# NewJob field of the same name, which validation must carry through (tests/test_service.py checks both).
REQUEST_ONLY = frozenset({
    "image",  # becomes source_index (zbot.core.refining)
    "from_image",  # the uploaded file; the Service keeps it as `upload` (its hash)
    "flagged_ok",  # where a flagged upload may be drawn from (the front end knows the channel)
    "is_admin",  # exempts from the per-user limits
    "rate_limits",  # the windows of the Policy
})


@dataclass(frozen=True)
class RenderSpec:
    """A validated job, everything the renderer needs and nothing else: `count` images of consecutive
    seeds, drawn one after the other (`image(i)` is the i-th, a job of one). With a `source`, image to
    image: the source enlarged or shrunk to width x height, noised by `strength` and drawn back."""

    job_id: int
    prompt: str
    seed: int
    width: int
    height: int
    steps: int
    count: int = 1
    source: Source | None = None
    strength: float | None = None
    weight: int = 1  # images of work each of its images is (ZBOT_UPSCALE_WEIGHT at an upscale's size): for ETAs
    style: str | None = None  # a configured style's name: the renderer applies its template and adapter
    factor: float | None = None  # Zoom out / Pan: the source is reframed (zbot.core.reframe) and inpainted
    direction: str | None = None

    @property
    def seeds(self) -> list[int]:
        return seeds_from(self.seed, self.count)

    @property
    def work(self) -> int:
        """Images of work in the whole job, as the queue's ETA counts them."""
        return self.count * self.weight

    @property
    def denoising_steps(self) -> int:
        return denoising_steps(self.steps, self.strength if self.source is not None else None)

    def image(self, index: int) -> RenderSpec:
        return replace(self, seed=self.seeds[index], count=1)

    @classmethod
    def of(cls, job_id: int, job: NewJob | Generation, source: Source | None = None) -> RenderSpec:
        """The one way a job becomes a spec: just admitted (a NewJob) or read back after a restart (a
        Generation). `source` is the image an image-to-image job starts from; its strength applies only
        with one. A pick (count 0) draws its one image."""
        count = max(1, job.count)
        return cls(job_id, job.prompt, job.seed, job.width, job.height, job.steps, count, source=source,
                   strength=job.strength if source is not None else None, weight=max(1, job.cost // count),
                   style=job.style,
                   factor=job.factor if source is not None else None,
                   direction=job.direction if source is not None else None)


@dataclass(frozen=True)
class Source:
    """The image an image-to-image job starts from: its PNG, or, when that is no longer kept, the spec
    that draws it again (the same seed, prompt, size and source draw the same image)."""

    png: bytes | None = None  # PNG (or, from `zbot draw --from`, any image file Pillow reads)
    redraw: RenderSpec | None = None


@dataclass(frozen=True)
class Picture:
    """One image of a finished job: its seed, its PNG, and the safety check's verdict (a
    zbot.engine.safety.Verdict; None when no check ran)."""

    seed: int
    png: bytes
    verdict: Any = None

    @property
    def flagged(self) -> bool:
        return self.verdict is not None and self.verdict.flagged


@dataclass(frozen=True)
class Result:
    """A finished job: its pictures (one, or the candidates of a grid) and how they were made."""

    job_id: int
    pictures: tuple[Picture, ...]
    width: int
    height: int
    steps: int
    prompt: str
    render_s: float  # all the job's images together
    wait_s: float
    style: str | None = None  # the style's name, for the caption

    @property
    def png(self) -> bytes:
        return self.pictures[0].png

    @property
    def seed(self) -> int:
        return self.pictures[0].seed

    @property
    def verdict(self) -> Any:
        return self.pictures[0].verdict

    @property
    def count(self) -> int:
        return len(self.pictures)

    @property
    def flagged(self) -> bool:
        """Any of its images."""
        return any(picture.flagged for picture in self.pictures)


@dataclass(frozen=True)
class Progress:
    job_id: int
    step: int
    steps: int
    image: int = 1  # which of the job's images is being drawn, from 1
    images: int = 1


@dataclass
class Generation:
    """One row of the generations table."""

    id: int
    source: str
    user_id: int
    guild_id: int | None
    channel_id: int | None
    prompt: str
    seed: int | None
    size: str | None
    width: int | None
    height: int | None
    steps: int | None
    status: Status
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    render_s: float | None
    parent_id: int | None
    interaction_id: int | None
    message_id: int | None
    owner: str | None = None  # the process (zbot.core.instance) that holds this job while it is unfinished
    safety_score: float | None = None  # the safety check's score (0-1); None when no check ran
    safety_checker: str | None = None
    count: int = 1  # images drawn by this job (seeds seed, seed + 1, ...)
    operation: str = "draw"  # an Operation
    cost: int = 1  # images of work it counts against its requester's limits
    strength: float | None = None  # image to image: how much of the source is redrawn
    source_id: int | None = None  # image to image: the generation whose image it starts from...
    source_index: int | None = None  # ...and which of its images
    factor: float | None = None  # Zoom out: the factor (migration 0011)
    direction: str | None = None  # Pan: the direction
    upload: str | None = None  # drawn from an uploaded picture: its hash
    style: str | None = None  # the style it was drawn in (migration 0012)

    @property
    def refined(self) -> bool:
        """Drawn from another image (img2img), not from noise."""
        return self.strength is not None and (self.source_id is not None or self.upload is not None)

    @property
    def seeds(self) -> list[int]:
        return seeds_from(self.seed or 0, self.count)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class Refused(Exception):
    """A request the bot declines, by the catalogue's key and values (zbot.catalogue): `message` is its
    English (HTTP, the command line, logs); a front end renders `text` in its reader's language.
    A Text (or, while a sentence has no key yet, a plain sentence) may stand for the key."""

    kind = "refused"

    def __init__(self, key: str, values: Mapping[str, Any] | None = None, retry_at: datetime | None = None):
        if isinstance(key, Text):
            key, values = key.key, {**key.values, **(values or {})}
        self.text = Text(key, values) if key in MESSAGES else key
        self.message = str.__str__(self.text)  # plain English, as the logs and the refusals table keep it
        super().__init__(self.message)
        self.retry_at = retry_at

    def sentence(self, when=lambda at: at.strftime("at %H:%M:%S UTC")) -> str:
        """The whole refusal; `when` renders the retry time (Discord shows it as "in 40 seconds")."""
        if self.retry_at is None:
            return self.message
        return f"{self.message} Try again {when(self.retry_at)}."


class BadInput(Refused):
    kind = "bad_input"


class RateLimited(Refused):
    kind = "rate_limited"


class TooManyPending(Refused):
    kind = "too_many_pending"


class QueueFull(Refused):
    kind = "queue_full"


class NotReady(Refused):
    kind = "not_ready"


class RenderFailed(Exception):
    """A render that raised; `reason` is safe to show to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BrokenImage(Exception):
    """A render that produced no usable image (NaN pixels, one flat colour); `reason` is for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Cancelled(Exception):
    """The job was taken out of the queue before it started (its requester, or an admin: `by_admin`)."""

    def __init__(self, by_admin: bool = False):
        super().__init__("cancelled by an admin" if by_admin else "cancelled")
        self.by_admin = by_admin


class ShuttingDown(Exception):
    """The executor stopped before this job ran; the job stays queued in the database."""


class Renderer(Protocol):
    """What a worker runs. `render` returns an image object that `encode` turns into bytes."""

    def load(self) -> None: ...

    def render(self, spec: RenderSpec, on_step: Callable[[int, int], None]) -> Any: ...

    def recover(self) -> None:
        """Called after a failed render: free what the failure left behind (cached GPU memory)."""

    # Optional: `warm_up_next() -> bool` does one step of warm-up left after `load` (the engine compiles
    # its other sizes this way) and says whether more remain; the worker calls it while no job waits.


class WorkerLost(Exception):
    """Raised by a renderer whose worker process died under a job (ZBOT_EXECUTOR=ray: the Ray actor was
    killed or crashed, its node was lost). The job is not at fault: the executor runs it once more."""
