"""Usage questions answered from the generations table (totals, per user, per day, latencies) and the
refusals table (who was refused, why, how often)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

from zbot.core.jobs import IMAGES, Status, sql_set
from zbot.core.store import Store

_IMAGES = sql_set(IMAGES)


@dataclass(frozen=True)
class Latency:
    count: int
    median: float | None
    p95: float | None

    @classmethod
    def of(cls, values: list[float]) -> Latency:
        if not values:
            return cls(0, None, None)
        values = sorted(values)
        p95 = values[0] if len(values) == 1 else statistics.quantiles(values, n=20, method="inclusive")[18]
        return cls(len(values), statistics.median(values), p95)


@dataclass(frozen=True)
class UserUsage:
    user_id: int
    done: int
    failed: int
    rejected: int
    last_at: float | None
    flagged: int = 0  # results the safety check flagged (withheld where they may not be shown)


@dataclass(frozen=True)
class UserRefusals:
    """One user's refused requests, by reason (a Refused kind: rate_limited, bad_input...)."""

    user_id: int
    by_reason: dict[str, int]
    last_at: float
    last_prompt: str  # the last one refused, cut short

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass
class UsageReport:
    user_id: int | None
    guild_id: int | None
    by_status: dict[str, int]
    images_24h: int
    images_7d: int
    wait: Latency
    render: Latency
    top_users: list[UserUsage] = field(default_factory=list)
    per_day: list[tuple[str, int]] = field(default_factory=list)
    today: str = ""  # the report's own day (UTC), where its per-day chart ends
    reports: int = 0  # Report-button reports on these images
    images: int = 0  # images drawn (each of a grid's), not jobs
    operations: dict[str, int] = field(default_factory=dict)  # images posted, by what made them
    styles: dict[str, int] = field(default_factory=dict)  # images made in each style (ZBOT_STYLES); none left out
    refusals: dict[str, int] = field(default_factory=dict)  # refused requests, by reason
    refused_users: list[UserRefusals] = field(default_factory=list)  # the most refused first
    flagged_users: list[tuple[int, int]] = field(default_factory=list)  # (user, flagged results), most first

    @property
    def blocked(self) -> int:
        """Jobs whose images the safety check flagged and that were withheld."""
        return self.by_status.get(Status.BLOCKED.value, 0)

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())


async def usage_report(store: Store, *, now: float, user_id: int | None = None, guild_id: int | None = None,
                       top: int = 10, days: int = 30) -> UsageReport:
    """Everything /stats and `zbot stats` show; restricted to one user and/or one server when given."""
    where, params = _scope(user_id, guild_id)
    by_status = {row[0]: row[1] for row in await store.query(
        f"SELECT status, count(*) FROM generations {where} GROUP BY status", params)}
    refusals = await _refusals(store, user_id, guild_id)
    by_reason: dict[str, int] = {}
    for each in refusals:
        for reason, count in each.by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    if refusals:  # requests by how they ended: refused ones are counted, no longer rows of their own
        by_status[Status.REJECTED.value] = by_status.get(Status.REJECTED.value, 0) + sum(by_reason.values())
    refused_of = {each.user_id: each.total for each in refusals}

    async def images_since(seconds: float) -> int:
        rows = await store.query(
            f"SELECT coalesce(sum(count), 0) FROM generations {where} AND status IN {_IMAGES} AND created_at > ?",
            [*params, now - seconds])
        return rows[0][0]

    # Render time per image: a grid's time is shared by its images.
    timings = await store.query(
        f"SELECT started_at - created_at, render_s / count FROM generations {where} AND status IN {_IMAGES} "
        "AND created_at > ? AND started_at IS NOT NULL AND count > 0", [*params, now - days * 86400])
    users = await store.query(
        f"""SELECT user_id, coalesce(sum(CASE WHEN status IN {_IMAGES} THEN count END), 0),
                   sum(status = '{Status.FAILED.value}'), sum(status = '{Status.REJECTED.value}'), max(created_at),
                   sum(status = '{Status.BLOCKED.value}')
            FROM generations {where} GROUP BY user_id ORDER BY 2 DESC, user_id LIMIT ?""", [*params, top])
    flagged = await store.query(
        f"""SELECT user_id, count(*) FROM generations {where} AND status = '{Status.BLOCKED.value}'
            GROUP BY user_id ORDER BY 2 DESC, user_id LIMIT ?""", [*params, top])
    operations = {row[0]: row[1] for row in await store.query(
        # Images, not jobs: a grid's count; a pick posts one image its grid drew (count 0).
        f"SELECT operation, sum(max(count, 1)) FROM generations {where} AND status IN {_IMAGES} GROUP BY operation "
        "ORDER BY 2 DESC, 1", params)}
    styles = {row[0]: row[1] for row in await store.query(
        f"SELECT style, sum(max(count, 1)) FROM generations {where} AND status IN {_IMAGES} AND style IS NOT NULL "
        "GROUP BY style ORDER BY 2 DESC, 1", params)}
    reports = await store.query(
        f"SELECT count(*) FROM reports WHERE generation_id IN (SELECT id FROM generations {where})", params)
    per_day = await store.query(
        f"""SELECT date(created_at, 'unixepoch') AS day, sum(count) FROM generations {where}
            AND status IN {_IMAGES} AND created_at > ? AND count > 0 GROUP BY day ORDER BY day""",
        [*params, now - days * 86400])
    return UsageReport(
        user_id=user_id,
        guild_id=guild_id,
        by_status=by_status,
        images=await images_since(now),  # since the epoch: all of them
        images_24h=await images_since(86400),
        images_7d=await images_since(7 * 86400),
        wait=Latency.of([row[0] for row in timings]),
        render=Latency.of([row[1] for row in timings if row[1] is not None]),
        top_users=[UserUsage(row[0], row[1], row[2], row[3] + refused_of.get(row[0], 0), row[4], row[5])
                   for row in users],
        per_day=[(row[0], row[1]) for row in per_day],
        today=datetime.fromtimestamp(now, UTC).date().isoformat(),
        reports=reports[0][0],
        operations=operations,
        styles=styles,
        refusals=by_reason,
        refused_users=refusals[:top],
        flagged_users=[(row[0], row[1]) for row in flagged],
    )


async def _refusals(store: Store, user_id: int | None, guild_id: int | None) -> list[UserRefusals]:
    """Each user's refusals (still kept: `zbot prune` removes old hours), the most refused first."""
    where, params = _scope(user_id, guild_id)
    rows = await store.query(
        # One max() in the query: SQLite takes the bare `sample` from the row holding it, the latest.
        f"""SELECT user_id, reason, sum(count), max(last_at), sample FROM refusals
            {where} GROUP BY user_id, reason""", params)
    users: dict[int, UserRefusals] = {}
    for user, reason, count, last_at, sample in rows:
        mine = users.get(user)
        if mine is None or last_at > mine.last_at:
            mine = UserRefusals(user, mine.by_reason if mine else {}, last_at, sample)
            users[user] = mine
        mine.by_reason[reason] = count
    return sorted(users.values(), key=lambda each: (-each.total, each.user_id))


def _scope(user_id: int | None, guild_id: int | None) -> tuple[str, list[int]]:
    """The WHERE clause (and its parameters) that restricts a table to one user and/or one server."""
    conditions, params = ["1"], []
    if user_id is not None:
        conditions.append("user_id = ?")
        params.append(user_id)
    if guild_id is not None:
        conditions.append("guild_id = ?")
        params.append(guild_id)
    return "WHERE " + " AND ".join(conditions), params
