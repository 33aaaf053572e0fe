"""The admins' use cases through Service alone, with no Discord: reports (a hostile note, a take-down that
fails), a server's queue with another zbot's job in it, cancelling from it, and /stats on the service's
clock. And the rule that makes them Service's: no front end writes SQL."""

from __future__ import annotations

import ast
import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.core.bans import Actor
from zbot.core.jobs import BadInput, DrawRequest

ROOT = Path(__file__).resolve().parent.parent
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b",
                 re.DOTALL)  # upper case, as zbot writes SQL: a sentence may say "select ... from"
OURS, THEIRS = 10, 20  # two servers


def sql_in(path: Path) -> list[int]:
    """The lines of a file where a string constant is an SQL statement."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)]


def test_no_front_end_writes_sql():
    """The queries are the core's: a cog that wants rows asks Service for a use case."""
    found = [f"{path.relative_to(ROOT)}:{line}" for folder in ("bot", "http")
             for path in sorted((ROOT / "zbot" / folder).rglob("*.py")) for line in sql_in(path)]
    assert found == []


def test_the_sql_check_sees_a_query_and_not_a_sentence(tmp_path):
    cog = tmp_path / "cog.py"
    cog.write_text('rows = q(f"SELECT id, user_id FROM generations WHERE guild_id = ? "\n  "AND status IN (1)")\n'
                   'text = "Select the size you want from the list, or update the settings."\n')
    assert sql_in(cog) == [1]


async def posted(core, guild_id: int = OURS, user_id: int = 1) -> int:
    return await core.store.record(user_id=user_id, guild_id=guild_id, channel_id=5, message_id=6, prompt="a fox",
                                   status="posted", size="square", width=64, height=64, steps=8)


async def test_a_report_note_with_a_lone_surrogate_is_kept_and_a_second_report_adds_nothing(settings):
    """A modal's text comes as JSON, where "\\ud800" is valid; SQLite's UTF-8 refuses it."""
    async with open_core(settings, [FakeRenderer()]) as core:
        job = await posted(core)
        first = await core.service.report(job, 7, "  bad \ud800 picture  ")
        again = await core.service.report(job, 7, "again")
        with pytest.raises(BadInput, match="no longer in my records"):
            await core.service.report(job + 1, 7, "")
        [row] = await core.store.query("SELECT generation_id, reporter_id, guild_id, note FROM reports")
    assert first.report_id == 1 and first.generation.id == job and again.report_id is None
    assert tuple(row) == (job, 7, OURS, "bad \\ud800 picture")


async def test_deleting_from_a_report_records_nothing_until_the_image_is_taken_down(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        job = await posted(core)
        reported = await core.service.report(job, 7, "")
        taken: list[int] = []

        async def refused(generation):
            raise BadInput("I couldn't delete it (403 Forbidden); delete the message by hand.")

        async def take_down(generation):
            taken.append(generation.id)

        with pytest.raises(BadInput, match="managers of the server the image is in"):  # manages another server
            await core.service.delete_reported(Actor(8, manages=THEIRS), reported.report_id, take_down)
        with pytest.raises(BadInput, match="delete the message by hand"):
            await core.service.delete_reported(Actor(9, manages=OURS), reported.report_id, refused)
        before = await core.store.query("SELECT status, resolved_by FROM generations, reports")
        await core.service.delete_reported(Actor(9, manages=OURS), reported.report_id, take_down)
        with pytest.raises(BadInput, match="isn't on show"):  # a second click
            await core.service.delete_reported(Actor(1, owner=True), reported.report_id, take_down)
        with pytest.raises(BadInput, match="report's image is no longer"):  # a forged report id
            await core.service.delete_reported(Actor(1, owner=True), 2**70, take_down)
        after = await core.store.query("SELECT status, resolved_by FROM generations, reports")
    assert [tuple(r) for r in before] == [("posted", None)]
    assert taken == [job] and [tuple(r) for r in after] == [("deleted", 9)]


async def test_the_queue_lists_ours_in_order_then_another_zbots_and_cancels_only_in_its_server(settings):
    renderer = FakeRenderer()
    renderer.gate.clear()  # the first job holds the GPU
    async with open_core(settings, [renderer]) as core:
        await core.executor.wait_ready()
        drawing = await core.service.submit(DrawRequest(user_id=1, prompt="drawing", guild_id=OURS))
        for _ in range(1000):  # until the worker holds it
            if renderer.active:
                break
            await asyncio.sleep(0.01)
        waiting = await core.service.submit(DrawRequest(user_id=2, prompt="waiting", guild_id=OURS))
        elsewhere = await core.service.submit(DrawRequest(user_id=3, prompt="elsewhere", guild_id=THEIRS))
        theirs = await core.store.record(user_id=4, guild_id=OURS, prompt="theirs", status="queued",
                                         owner="00000001deadbeef", size="square", width=64, height=64, steps=8)
        listing = await core.service.queue(OURS)
        with pytest.raises(BadInput, match="isn't in this server's queue"):  # a forged menu value
            await core.service.cancel_queued(THEIRS, waiting.job_id, 9)
        with pytest.raises(BadInput, match="has started"):
            await core.service.cancel_queued(OURS, drawing.job_id, 9)
        cancelled = await core.service.cancel_queued(OURS, waiting.job_id, 9)
        renderer.gate.set()
        await drawing.result()
        await elsewhere.result()
        await core.service.drain(10)
        statuses = [r[0] for r in await core.store.query("SELECT status FROM generations ORDER BY id")]
    assert [(job.job_id, job.position, job.mine, job.cancellable) for job in listing.jobs] == [
        (drawing.job_id, 0, True, False), (waiting.job_id, 1, True, True), (theirs, None, False, False)]
    assert listing.depth == 3 and cancelled.user_id == 2  # the depth counts every server's jobs
    assert statuses == ["drawn", "cancelled", "drawn", "queued"]


async def test_stats_are_of_the_services_clock_and_chart_ends_on_its_day(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        then = datetime(2026, 3, 14, 12, tzinfo=UTC).timestamp()
        core.service.clock = lambda: then
        await core.store.record(user_id=1, guild_id=OURS, prompt="p", status="posted", created_at=then - 86400)
        empty = await core.service.stats(THEIRS)
        stats = await core.service.stats(OURS)
        one = await core.service.stats(OURS, user_id=2)
    assert stats.report.today == "2026-03-14" and stats.report.per_day == [("2026-03-13", 1)]
    assert stats.chart is not None and stats.chart.startswith(b"\x89PNG") and stats.depth == 0
    assert empty.chart is None and one.report.per_day == []

