"""Looking after the database over months: a consistent copy while the bot runs (`zbot backup`), and
old history removed (`zbot prune`)."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from zbot.config import UNIT_SECONDS, Settings
from zbot.core.jobs import UNDELIVERED, BadInput, sql_set
from zbot.core.store import Store

PRUNE_BATCH = 500
_SPAN = re.compile(r"^\s*(\d+)\s*(d|day|days|w|week|weeks|h|hour|hours)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    generations: int


def backup(database: Path, target: Path) -> Backup:
    """Copy the live database with SQLite's online backup API in one step, a snapshot the bot keeps
    writing beside; the copy is checked (integrity_check) and only then renamed into place. Blocking."""
    if not database.exists():
        raise BadInput(f"There is no database at {database}.")
    target = target.expanduser()
    if target.resolve() == database.resolve() or (target.exists() and target.samefile(database)):
        raise BadInput("The backup must go to another file than the database itself.")
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(database, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            # One step: a single read transaction on the (WAL) source, which writers don't wait for. In
            # several steps, each write by another connection restarts the copy from the first page:
            # under a busy bot (a write every 0.2 s) a 240 MiB file never finished.
            source.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            status = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if status != "ok":
                raise BadInput(f"The copy failed its integrity check ({status}); try again.")
            rows = copy.execute("SELECT count(*) FROM generations").fetchone()[0]
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(partial, target)
    return Backup(target, target.stat().st_size, rows)


def parse_span(text: str) -> int:
    """Seconds in "90d", "12w", "36h" (a bare number is days)."""
    match = _SPAN.match(text)
    if not match:
        raise BadInput(f"{text!r} is not a span like 90d, 12w or 48h.")
    unit = {"d": "day", "w": "week", "h": "hour"}[(match[2] or "d")[0].lower()]
    return int(match[1]) * UNIT_SECONDS[unit]


def longest_window(settings: Settings, server_values: list[Settings]) -> int:
    """The longest rate window anywhere (environment, role tiers, ceilings, servers' own): rows younger
    than that still count against someone's limit."""
    spans = [0]
    for each in [settings, *server_values]:
        spans += [w.seconds for w in each.rate_limits]
        spans += [w.seconds for w in each.max_server_rate_limits]
        spans += [w.seconds for tier in each.role_rate_limits.values() for w in tier]
    return max(spans)


@dataclass(frozen=True)
class Pruned:
    generations: int
    reports: int
    kept_for_lineage: int  # old rows kept because a younger image was made from them
    refusals: int = 0  # hours of refusal counts (table refusals) removed


async def prune(store: Store, *, older_than_s: int, now: float, longest_window_s: int,
                dry_run: bool = False) -> Pruned:
    """Remove the finished rows (their reports, the refusal counts) from more than `older_than_s` ago. Kept: jobs
    still waiting for their image, and rows a younger image was made from (its parent or source), so
    that it can still be drawn again. Refused if rows that young still count against a limit."""
    if older_than_s <= longest_window_s:
        raise BadInput(f"Rows younger than {longest_window_s // 3600} hours still count against a rate limit; "
                       "prune only older ones.")
    cutoff = now - older_than_s
    old = f"created_at < ? AND status NOT IN {sql_set(UNDELIVERED)}"
    referenced = ("EXISTS (SELECT 1 FROM generations AS child WHERE child.parent_id = g.id OR "
                  "child.source_id = g.id)")
    if dry_run:
        total = await store.scalar(store.connection, f"SELECT count(*) FROM generations AS g WHERE {old}", (cutoff,))
        kept = await store.scalar(store.connection, f"SELECT count(*) FROM generations AS g WHERE {old} AND "
                                  f"{referenced}", (cutoff,))
        reports = await store.scalar(store.connection, "SELECT count(*) FROM reports WHERE generation_id IN "
                                     f"(SELECT id FROM generations AS g WHERE {old} AND NOT {referenced})", (cutoff,))
        refusals = await store.scalar(store.connection, "SELECT count(*) FROM refusals WHERE hour + 3600 <= ?",
                                      (cutoff,))
        return Pruned(total - kept, reports, kept, refusals)
    generations = reports = 0
    while True:  # children first: a parent goes once nothing refers to it any more
        ids = await store.column(store.connection, f"SELECT id FROM generations AS g WHERE {old} AND NOT "
                                 f"{referenced} LIMIT {PRUNE_BATCH}", (cutoff,))
        if not ids:
            break
        marks = ", ".join("?" for _ in ids)
        reports += (await store.write(f"DELETE FROM reports WHERE generation_id IN ({marks})", ids)).rowcount
        generations += (await store.write(f"DELETE FROM generations WHERE id IN ({marks})", ids)).rowcount
    kept = await store.scalar(store.connection, f"SELECT count(*) FROM generations AS g WHERE {old}", (cutoff,))
    # Refusal counts never count against a limit: the hours wholly before the cutoff go.
    refusals = (await store.write("DELETE FROM refusals WHERE hour + 3600 <= ?", (cutoff,))).rowcount
    return Pruned(generations, reports, kept, refusals)
