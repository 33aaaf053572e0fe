"""Per-user limits kept in SQLite: the check and the reservation are one transaction.

A request counts against a window, as many images of work as it asks for (its `cost`: an upscale counts more), from the moment it is admitted (queued, running, drawn, posted, and
still once its message is deleted, or withheld because the safety check flagged it); failed and cancelled jobs never count, and refused
requests are no rows at all, only counted (Store.count_refusal). Admins skip the per-user limits but not the queue bound, which
protects the machine rather than sharing it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zbot.catalogue import Text, text
from zbot.config import Window
from zbot.core.jobs import (
    COUNTED,
    PENDING,
    NewJob,
    QueueFull,
    RateLimited,
    Refused,
    Status,
    TooManyPending,
    sql_set,
    utc,
)
from zbot.core.store import Store

_COUNTED = sql_set(COUNTED)
_PENDING = sql_set(PENDING)


EVERYWHERE = object()  # Policy.guild_id: count a user's images in every server


@dataclass(frozen=True)
class Policy:
    windows: tuple[Window, ...]
    max_pending: int
    queue_size: int
    # The server whose images the windows count (None: those made outside a server, over HTTP or the
    # command line); everywhere with ZBOT_LIMITS_SCOPE=global.
    guild_id: Any = EVERYWHERE

    def where(self) -> tuple[str, list[Any]]:
        """The SQL that picks the rows the windows count, after `user_id = ?`."""
        if self.guild_id is EVERYWHERE:
            return "", []
        return " AND guild_id IS ?", [self.guild_id]


@dataclass(frozen=True)
class WindowUsage:
    window: Window
    used: int
    remaining: int
    resets_at: float | None  # when the oldest counted image leaves the window


@dataclass(frozen=True)
class Quota:
    windows: list[WindowUsage]
    pending: int
    max_pending: int


async def admit(store: Store, policy: Policy, job: NewJob, *, now: float, exempt: bool = False,
                queue_retry_s: float = 60.0) -> int:
    """Insert `job` as a queued generation if every limit allows it, else count the refusal (no row:
    asking past a limit must not grow the file) and raise the Refused that says why. Returns the new
    generation's id.

    The check and the reservation are one INSERT ... SELECT ... WHERE statement: atomic in SQLite,
    so concurrent requests can't both take the last slot, and one hop to the database."""
    user_id = job.user_id
    wanted = job.cost  # images of work: what the windows count
    conditions, params = [], []
    if not exempt:
        conditions.append(f"(SELECT count(*) FROM generations WHERE user_id = ? AND status IN {_PENDING}) < ?")
        params += [user_id, policy.max_pending]
        scope, scope_params = policy.where()
        for window in policy.windows:
            conditions.append(f"(SELECT coalesce(sum(cost), 0) FROM generations WHERE user_id = ?{scope} "
                              f"AND created_at > ? AND status IN {_COUNTED}) + ? <= ?")
            params += [user_id, *scope_params, now - window.seconds, wanted, window.limit]
    conditions.append(f"(SELECT count(*) FROM generations WHERE status IN {_PENDING}) < ?")
    params.append(policy.queue_size)
    for _ in range(3):
        job_id = await store.insert_job(job, status=Status.QUEUED, created_at=now,
                                        condition=" AND ".join(conditions), params=params)
        if job_id is not None:
            return job_id
        # Refused: find out which limit said no, to say so (a read, outside the atomic step).
        refusal = None if exempt else await _user_refusal(store, policy, user_id, now, wanted)
        if refusal is None and await store.scalar(
                store.connection, f"SELECT count(*) FROM generations WHERE status IN {_PENDING}") >= policy.queue_size:
            refusal = QueueFull("queue.full", {"waiting": policy.queue_size}, utc(now + queue_retry_s))
        if refusal is not None:
            await store.count_refusal(user_id=user_id, guild_id=job.guild_id, source=job.source,
                                      reason=refusal.kind, prompt=job.prompt, error=refusal.message, at=now)
            raise refusal
        # A slot freed up between the two steps: try the atomic step again.
    raise QueueFull("queue.busy", retry_at=utc(now + queue_retry_s))


async def _user_refusal(store: Store, policy: Policy, user_id: int, now: float, wanted: int = 1) -> Refused | None:
    conn = store.connection
    pending = await store.scalar(
        conn, f"SELECT count(*) FROM generations WHERE user_id = ? AND status IN {_PENDING}", (user_id,))
    if pending >= policy.max_pending:
        return TooManyPending("limit.pending.one" if policy.max_pending == 1 else "limit.pending.many",
                              {"pending": pending})
    for window in policy.windows:
        if wanted > window.limit:  # more than the window ever allows: no waiting helps
            return RateLimited("limit.too_big", {"window": _per(window), "wanted": wanted, "limit": window.limit})
        counted = await _counted_since(store, policy, user_id, now - window.seconds)
        used = sum(images for _, images in counted)
        if used + wanted <= window.limit:
            continue
        # The user may go again once enough of the oldest counted images leave the window.
        frees_at = _frees_at(counted, used + wanted - window.limit) + window.seconds
        left = max(0, window.limit - used)
        if left:
            return RateLimited("limit.left.one" if left == 1 else "limit.left.many",
                               {"left": left, "window": _per(window), "wanted": wanted}, utc(frees_at))
        return RateLimited("limit.reached", {"window": _per(window)}, utc(frees_at))
    return None


def _frees_at(counted: list[tuple[float, int]], images: int) -> float:
    """When the oldest rows holding `images` counted images were made (they leave the window first)."""
    freed = 0
    for created_at, count in counted:
        freed += count
        if freed >= images:
            return created_at
    return counted[-1][0] if counted else 0.0


async def _counted_since(store: Store, policy: Policy, user_id: int, since: float) -> list[tuple[float, int]]:
    """(created_at, images) of the user's counted rows in a window, oldest first."""
    scope, scope_params = policy.where()
    rows = await store.query(f"SELECT created_at, cost FROM generations WHERE user_id = ?{scope} AND created_at > ? "
                             f"AND status IN {_COUNTED} AND cost > 0 ORDER BY created_at",
                             (user_id, *scope_params, since))
    return [(row[0], row[1]) for row in rows]


async def quota(store: Store, policy: Policy, user_id: int, *, now: float) -> Quota:
    """What the user has left in each window, and how many of their jobs are unfinished."""
    usages = []
    conn = store.connection
    for window in policy.windows:
        counted = await _counted_since(store, policy, user_id, now - window.seconds)
        used = sum(images for _, images in counted)
        resets = counted[0][0] + window.seconds if counted else None
        usages.append(WindowUsage(window, used, max(0, window.limit - used), resets))
    pending = await store.scalar(
        conn, f"SELECT count(*) FROM generations WHERE user_id = ? AND status IN {_PENDING}", (user_id,))
    return Quota(usages, pending, policy.max_pending)


def _per(window: Window) -> Text | str:
    """A window as a sentence: "5 images per minute", "1 image per 6 hours"."""
    span = _span(window)
    if span is None:
        return window.text
    return text("window.one" if window.limit == 1 else "window.many", limit=window.limit, span=span)


def _span(window: Window) -> Text | None:
    span = timedelta(seconds=window.seconds)
    units = [(86400 * 7, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")]
    for size, name in units:
        if span.total_seconds() % size == 0:
            count = int(span.total_seconds() // size)
            return text(f"span.{name}") if count == 1 else text(f"span.{name}s", count=count)
    return None


def rate(window: Window) -> Text | str:
    """A window as it was set ("5/minute"), in the reader's language when it is written the usual way."""
    span = _span(window)
    shown = text("window.rate", limit=window.limit, span=span) if span is not None else None
    return shown if shown == window.text else window.text


def pick_tier(role_ids: list[int], tiers: dict[int, tuple[Window, ...]],
              default: tuple[Window, ...]) -> tuple[int | None, tuple[Window, ...]]:
    """The role tier that applies to a member: the most generous of their roles' tiers (the most
    images allowed over a day, then the biggest burst), or the default windows (role None)."""
    mine = [(role, tiers[role]) for role in role_ids if role in tiers]
    if not mine:
        return None, default
    return max(mine, key=lambda tier: _generosity(tier[1]))


def _generosity(windows: tuple[Window, ...]) -> tuple[float, float]:
    if not windows:
        return (float("inf"), float("inf"))
    per_day = min(w.limit * max(1.0, 86400 / w.seconds) for w in windows)
    burst = min(w.limit for w in windows)
    return (per_day, burst)
