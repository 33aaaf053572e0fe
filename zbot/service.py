"""The use cases every front end shares: draw, reroll, quota. Plain values in, plain values out.

A request flows one way: front end -> validate -> admit (limits + store, one transaction) ->
executor -> back up as a Result, and the row is brought up to date at each step.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .background import Background
from .config import MAX_STEPS, MIN_STEPS, SEED_LIMIT, Settings, Window
from .executor import Executor
from .jobs import BadInput, DrawRequest, Progress, Refused, RenderFailed, RenderSpec, Result, ShuttingDown
from .limits import Policy, Quota, admit, quota
from .store import Store

log = logging.getLogger(__name__)


def blocked_word(prompt: str, words: list[str]) -> str | None:
    """The first blocked word the prompt contains as a whole word, ignoring case."""
    folded = prompt.casefold()
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return word
    return None


def validate(s: Settings, request: DrawRequest) -> dict[str, Any]:
    """The row to store for a request, or BadInput saying what is allowed."""
    if s.channel_ids and request.channel_id is not None and request.channel_id not in s.channel_ids:
        raise BadInput("I don't draw in this channel; try " + ", ".join(f"<#{c}>" for c in s.channel_ids[:5]) + ".")
    prompt = request.prompt.strip()
    if not prompt:
        raise BadInput("Describe the image you want: the prompt is empty.")
    if len(prompt) > s.max_prompt_chars:
        raise BadInput(f"Your prompt is {len(prompt)} characters long; the most allowed is {s.max_prompt_chars}.")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in prompt):
        raise BadInput("Your prompt contains control characters; remove them and try again.")
    blocked = blocked_word(prompt, s.blocked_words)
    if blocked:
        raise BadInput(f"Your prompt contains a blocked word ({blocked!r}); please rephrase it.")
    seed = request.seed
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise BadInput(f"The seed must be a whole number from 0 to {SEED_LIMIT - 1}.")
    size = request.size or s.default_size
    sizes = s.size_table
    if size not in sizes:
        raise BadInput(f"Unknown size {size[:40]!r}; choose one of: {', '.join(sizes)}.")
    steps = s.steps if request.steps is None else request.steps
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise BadInput(f"Steps must be between {MIN_STEPS} and {MAX_STEPS}.")
    width, height = sizes[size]
    return dict(source=request.source, user_id=request.user_id, guild_id=request.guild_id,
                channel_id=request.channel_id, prompt=prompt,
                seed=secrets.randbelow(SEED_LIMIT) if seed is None else seed,
                size=size, width=width, height=height, steps=steps, parent_id=request.parent_id,
                interaction_id=request.interaction_id)


class JobEvents(Protocol):
    """Told how each request ends; zbot.metrics.Metrics is one."""

    def refused(self, refusal: Refused) -> None: ...

    def done(self, result: Result) -> None: ...

    def failed(self, reason: str) -> None: ...


class NoEvents:
    def refused(self, refusal: Refused) -> None:
        pass

    def done(self, result: Result) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass


@dataclass
class Ticket:
    """An admitted job. Await `result()`; ask `position()` and `eta()` while it waits."""

    spec: RenderSpec
    size: str
    _executor: Executor
    _done: asyncio.Task
    progress_listeners: list[Callable[[Progress], None]] = field(default_factory=list)
    channel_id: int | None = None

    @property
    def job_id(self) -> int:
        return self.spec.job_id

    def position(self) -> int | None:
        return self._executor.position(self.job_id)

    def eta(self) -> float | None:
        return self._executor.eta(self.job_id)

    async def result(self) -> Result:
        """The finished image; raises RenderFailed, or ShuttingDown if the bot stopped first."""
        return await asyncio.shield(self._done)


class Service:
    def __init__(self, settings: Settings, store: Store, executor: Executor, *,
                 clock: Callable[[], float] = time.time, events: JobEvents | None = None):
        self.settings = settings
        self.store = store
        self.executor = executor
        self.clock = clock
        self.events: JobEvents = events or NoEvents()
        self._background = Background("recording a job", expected=(RenderFailed, ShuttingDown))

    # -- drawing ---------------------------------------------------------------------------------

    def validate(self, request: DrawRequest) -> dict[str, Any]:
        return validate(self.settings, request)

    def policy(self, windows: tuple[Window, ...] | None = None) -> Policy:
        s = self.settings
        return Policy(s.rate_limits if windows is None else windows, s.max_pending_per_user, s.queue_size)

    async def submit(self, request: DrawRequest) -> Ticket:
        """Validate, admit and queue a request. Raises a Refused subclass saying why not."""
        now = self.clock()
        try:
            row = self.validate(request)
        except BadInput as refusal:
            # Every request is a row, refused ones too; keep absurd input from bloating the file.
            await self.store.record(source=request.source, user_id=request.user_id, guild_id=request.guild_id,
                                    channel_id=request.channel_id, prompt=request.prompt[:2000],
                                    status="rejected", error=refusal.message, created_at=now,
                                    interaction_id=request.interaction_id)
            self._refused(request, refusal)
            raise
        try:
            job_id = await admit(self.store, self.policy(request.rate_limits), row, now=now,
                                 exempt=request.is_admin, queue_retry_s=self._queue_retry_s())
        except Refused as refusal:
            self._refused(request, refusal)
            raise
        spec = RenderSpec(job_id, row["prompt"], row["seed"], row["width"], row["height"], row["steps"])
        return self.enqueue(spec, row["size"], row["channel_id"], user_id=request.user_id, source=request.source)

    def _refused(self, request: DrawRequest, refusal: Refused) -> None:
        self.events.refused(refusal)
        log.info("%s request from user %s refused (%s)", request.source, request.user_id, refusal.kind,
                 extra=dict(user_id=request.user_id, source=request.source, outcome="rejected",
                            reason=refusal.kind))

    def enqueue(self, spec: RenderSpec, size: str, channel_id: int | None = None, *,
                user_id: int | None = None, source: str | None = None) -> Ticket:
        """Hand an already-stored job to the executor (also used to resume jobs after a restart)."""
        listeners: list[Callable[[Progress], None]] = []

        def on_progress(progress: Progress) -> None:
            for listener in list(listeners):
                listener(progress)

        def on_start(at: float) -> None:
            self._background.spawn(self.store.mark_running(spec.job_id, at))

        future = self.executor.submit(spec, on_progress=on_progress, on_start=on_start)
        done = self._background.spawn(self._complete(spec.job_id, future, user_id, source))
        return Ticket(spec, size, self.executor, done, listeners, channel_id)

    async def _complete(self, job_id: int, future: asyncio.Future, user_id: int | None = None,
                        source: str | None = None) -> Result:
        who = dict(job_id=job_id, user_id=user_id, source=source)
        try:
            result = await future
        except RenderFailed as exc:
            await self.store.mark_failed(job_id, self.clock(), exc.reason)
            self.events.failed(exc.reason)
            log.info("job %s (%s, user %s) failed: %s", job_id, source, user_id, exc.reason,
                     extra=dict(who, outcome="failed", error=exc.reason))
            raise
        except ShuttingDown:
            raise  # the row stays queued: the next start picks it up
        await self.store.mark_done(job_id, self.clock(), result.render_s)
        self.events.done(result)
        log.info("job %s (%s, user %s) done: wait %.2f s, render %.2f s", job_id, source, user_id,
                 result.wait_s, result.render_s,
                 extra=dict(who, outcome="done", wait_s=round(result.wait_s, 3), render_s=round(result.render_s, 3)))
        return result

    def _queue_retry_s(self) -> float:
        return max(10.0, self.executor.mean_render_s * self.executor.depth / self.executor.workers)

    # -- other use cases -----------------------------------------------------------------------

    async def quota(self, user_id: int, windows: tuple[Window, ...] | None = None) -> Quota:
        return await quota(self.store, self.policy(windows), user_id, now=self.clock())

    async def drain(self) -> None:
        """Wait for the bookkeeping of finished jobs (used at shutdown and in tests)."""
        await self._background.wait()

