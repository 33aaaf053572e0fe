"""A member's own records through Service alone: /history's pages, and a forget that leaves no text in
the database file or its write-ahead log, removes the kept images, keeps the limits counting, and stays
done after a restart; `zbot forget` for every server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.cli.main import main as cli
from zbot.config import parse_windows
from zbot.core.drawn import drawn_dir

OURS, THEIRS = 10, 20
SECRET = "zebra-unicorn-secret-{}"  # a prompt whose bytes the tests look for in the files
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" + b"IEND\xaeB`\x82"


def files_hold(database: Path, needle: bytes) -> list[str]:
    """Which of the database's files (the file itself, its -wal) still hold `needle`."""
    return [path.name for path in (database, Path(f"{database}-wal"))
            if path.exists() and needle in path.read_bytes()]


async def drawn(core, n: int, *, user_id: int = 1, guild_id: int | None = OURS, at: float | None = None) -> int:
    """A posted image with its kept PNG, as a draw leaves it."""
    job = await core.store.record(user_id=user_id, guild_id=guild_id, channel_id=5, message_id=1000 + n,
                                  prompt=SECRET.format(n), seed=n, status="posted", size="square", width=64,
                                  height=64, steps=8, created_at=time.time() if at is None else at)
    core.lifecycle.images.save(job, PNG)
    return job


async def test_history_pages_newest_first_and_marks_what_is_not_on_show(settings):
    async with open_core(settings, [FakeRenderer()]) as core:
        jobs = [await drawn(core, n) for n in range(25)]
        await core.store.update(jobs[3], status="deleted")
        await core.store.update(jobs[4], status="blocked", message_id=None)
        await drawn(core, 99, user_id=2)  # another member's
        await drawn(core, 98, guild_id=THEIRS)  # another server's
        pages = [await core.service.history(1, OURS, page) for page in range(4)]
    assert [len(p.entries) for p in pages[:3]] == [10, 10, 5] and pages[0].pages == 3 and pages[0].total == 25
    assert pages[3].page == 2  # past the end: the last page
    listed = [e.job_id for p in pages[:3] for e in p.entries]
    assert listed == sorted(jobs, reverse=True)
    by_id = {e.job_id: e for p in pages[:3] for e in p.entries}
    assert by_id[jobs[0]].posted and by_id[jobs[0]].message_id == 1000 and by_id[jobs[0]].prompt == SECRET.format(0)
    assert not by_id[jobs[3]].posted and not by_id[jobs[4]].posted


async def test_forget_leaves_no_prompt_in_the_file_or_its_log_and_the_limits_still_count(settings):
    settings = settings.model_copy(update={"rate_limits": parse_windows("30/hour")})
    async with open_core(settings, [FakeRenderer()]) as core:
        old = await drawn(core, 0, at=time.time() - 2 * 3600)  # older than every window: goes altogether
        jobs = [await drawn(core, n) for n in range(1, 6)]
        theirs = await drawn(core, 7, user_id=2)
        await core.store.record(user_id=2, guild_id=OURS, prompt="theirs", status="posted", source_id=jobs[0],
                                parent_id=jobs[0], size="square")  # a row made from one of the member's
        await core.service.report(theirs, 1, "note-" + SECRET.format("report"))
        await core.store.count_refusal(user_id=1, guild_id=OURS, source="discord", reason="bad_input",
                                       prompt=SECRET.format("refused"), error="no", at=time.time())
        digest = core.lifecycle.images.save_upload(PNG)  # their own picture, and one another member uploaded too
        await core.store.update(jobs[1], upload=digest)
        shared = core.lifecycle.images.save_upload(PNG + b"shared")
        await core.store.update(jobs[2], upload=shared)
        await core.store.update(theirs, upload=shared)
        before = await core.service.quota(1, guild_id=OURS)
        database = settings.database
        assert files_hold(database, b"zebra-unicorn") != []

        # Debian's SQLite zeroes freed space by default; SQLite's own default (and many builds') does not.
        await core.store.connection.execute("PRAGMA secure_delete=OFF")
        done = await core.service.forget(1, OURS, delete_messages=True)

        assert files_hold(database, b"zebra-unicorn-secret-1") == []
        assert files_hold(database, b"secret-refused") == [] and files_hold(database, b"note-zebra") == []
        assert Path(f"{database}-wal").stat().st_size == 0  # checkpointed and emptied
        folder = drawn_dir(database)
        assert sorted(p.name for p in folder.iterdir()) == [f"{theirs}.png", "uploads"]
        assert [p.name for p in (folder / "uploads").iterdir()] == [f"{shared}.png"]  # still drawn from by another
        assert done.images == 6 and done.files == 7
        assert sorted(done.messages) == [(5, 1000 + n) for n in range(6)]
        assert await core.store.get(old) is None
        assert (await core.store.get(jobs[0])).prompt == ""  # named by another's row: kept, blank
        after = await core.service.quota(1, guild_id=OURS)
        assert after.windows[0].used == before.windows[0].used == 5  # forgetting resets no limit
        assert (await core.service.history(1, OURS)).total == 0
        assert (await core.store.get(theirs)).prompt == SECRET.format(7)
    async with open_core(settings, [FakeRenderer()]) as core:  # a restart brings nothing back
        assert (await core.service.history(1, OURS)).total == 0
        assert sorted(p.name for p in drawn_dir(database).iterdir()) == [f"{theirs}.png", "uploads"]
    assert files_hold(database, b"zebra-unicorn-secret-1") == []


def test_zbot_forget_forgets_a_user_in_every_server(settings, monkeypatch, capsys):
    monkeypatch.setenv("ZBOT_DATABASE", str(settings.database))

    async def setup() -> int:
        async with open_core(settings, [FakeRenderer()]) as core:
            await drawn(core, 1)
            await drawn(core, 2, guild_id=THEIRS)
            await drawn(core, 3, guild_id=None)
            return await drawn(core, 4, user_id=2)

    async def prompts() -> list[str]:
        async with open_core(settings, [FakeRenderer()]) as core:
            return await core.store.column(core.store.connection, "SELECT prompt FROM generations ORDER BY id")

    kept = asyncio.run(setup())
    assert cli(["forget", "1"]) == 0
    assert "3 images" in capsys.readouterr().out
    assert asyncio.run(prompts()) == ["", "", "", SECRET.format(4)]
    assert [p.name for p in drawn_dir(settings.database).iterdir()] == [f"{kept}.png"]
    assert files_hold(settings.database, b"zebra-unicorn-secret-1") == []
