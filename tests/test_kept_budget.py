"""The kept images can't fill the disk: a byte budget (ZBOT_KEEP_IMAGES_MAX_GB), its size in /metrics and
/healthz, and the temporary files of saves a crash cut short swept out."""

from __future__ import annotations

import os
import time

from support.renderers import FakeRenderer
from test_http import serving
from test_metrics import values

from zbot.app import open_core
from zbot.core.drawn import PNG_END, PNG_SIGNATURE, STALE_PART_S, DrawnImages, drawn_dir
from zbot.core.instance import Instance
from zbot.core.jobs import DrawRequest, Picture, Result
from zbot.core.lifecycle import Lifecycle
from zbot.core.store import Store

KB = 1000


def png(size: int) -> bytes:
    """A whole PNG, as far as DrawnImages.load can tell, of `size` bytes."""
    return PNG_SIGNATURE + b"\0" * (size - len(PNG_SIGNATURE) - len(PNG_END)) + PNG_END


def drawn(job_id: int, *sizes: int) -> Result:
    return Result(job_id, tuple(Picture(job_id, png(size)) for size in sizes), 64, 64, 8, "p", 0.1, 0.0)


async def test_beyond_the_budget_the_oldest_kept_images_go_never_an_unfinished_jobs_or_its_source(tmp_path):
    database = tmp_path / "zbot.sqlite3"
    store = await Store.open(database)
    images = DrawnImages(drawn_dir(database), max_bytes=5 * KB)
    instance = Instance(database)
    lifecycle = Lifecycle(store, images, instance)
    try:
        common = dict(user_id=1, prompt="p", owner=instance.id)
        waiting = await store.record(**common, status="drawn")  # 1: drawn, not yet posted: owed its image
        source = await store.record(**common, status="posted")  # 2: what job 5 starts from
        oldest = await store.record(**common, status="posted")  # 3
        grid = await store.record(**common, status="posted", count=2)  # 4: a grid's two images go together
        await store.record(**common, status="queued", source_id=source, strength=0.7)  # 5: unfinished
        for job_id in (waiting, source, oldest):
            images.save(job_id, png(1 * KB))
        for index in range(2):
            images.save(grid, png(1 * KB), index)
        assert images.bytes == 5 * KB and not images.over_budget()

        newest = await store.record(**common, status="running")  # 6: its render comes in, 2 KB over
        await lifecycle.drawn(drawn(newest, 2 * KB), keep=True)
        # The oldest first, skipping what an unfinished job needs, until within the budget.
        assert images.job_ids() == [waiting, source, newest]
        assert images.bytes == sum(p.stat().st_size for p in images.folder.iterdir()) == 4 * KB
        assert await lifecycle.image(newest) == png(2 * KB)

        # Another process on this database saves beside us: the periodic sweep measures and trims.
        other = DrawnImages(drawn_dir(database), max_bytes=0)
        for _ in range(3):  # 7, 8, 9
            other.save(await store.record(**common, status="posted"), png(1 * KB))
        assert images.bytes == 4 * KB  # this process's count knows nothing of them yet
        await lifecycle.adopt_orphans()
        assert images.job_ids() == [waiting, source, newest, 9] and images.bytes == 5 * KB

        # Nothing left that may go: over the budget it stays, rather than lose an image someone is owed.
        images.max_bytes = 1 * KB
        await lifecycle.trim_images()
        assert images.job_ids() == [waiting, source, newest]
    finally:
        instance.close()
        await store.close()


def test_the_temporary_files_of_saves_a_crash_cut_short_are_swept_and_a_live_save_s_kept(tmp_path):
    folder = tmp_path / "zbot.sqlite3-drawn"
    folder.mkdir()
    crashed, live = folder / "7.4242.part", folder / "8.4243.part"
    crashed.write_bytes(b"half a PNG")
    live.write_bytes(b"a save under way in another process")
    long_ago = time.time() - STALE_PART_S - 60
    os.utime(crashed, (long_ago, long_ago))
    images = DrawnImages(folder)  # at the start
    assert not crashed.exists() and live.exists() and images.bytes == 0
    os.utime(live, (long_ago, long_ago))  # and in the periodic sweep
    assert images.sweep_partials() == 1 and not live.exists()


async def test_the_kept_images_size_and_budget_are_in_metrics_and_healthz(settings):
    settings = settings.model_copy(update={"keep_images_max_gb": 0.5})
    async with open_core(settings, [FakeRenderer()]) as core, serving(core) as client:
        ticket = await core.service.submit(DrawRequest(user_id=1, prompt="a fox", channel_id=5))
        await ticket.result()
        await core.service.drain()
        size = core.lifecycle.images.path(ticket.job_id).stat().st_size
        got = values(core.metrics)
        assert got[("zbot_kept_images_bytes", ())] == size > 0
        assert got[("zbot_kept_images_budget_bytes", ())] == 0.5e9
        health = await (await client.get("/healthz")).json()
        assert health["kept_images"] == {"bytes": size, "budget_bytes": 500_000_000}
