"""Recovery at start and the periodic housekeeping as core use cases (Service.recover, kept_result,
housekeeping): plain values out, no Discord. The Discord side of posting them is in test_restarts.py,
test_delivery_faults.py and test_safety.py."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import time

import pytest
from PIL import Image
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.core.drawn import DrawnImages, drawn_dir
from zbot.core.jobs import RenderFailed, Status
from zbot.core.recovery import FAILED, LOST, SOURCE_GONE
from zbot.core.store import Store
from zbot.engine.safety import SafetyUnavailable


def a_png(colour: str = "red") -> bytes:
    image = Image.new("RGB", (64, 64), colour)
    image.putpixel((0, 0), (255, 255, 255))  # one flat colour would be a broken image
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def left_behind(settings, **jobs) -> dict[str, int]:
    """Rows a crashed process left (owner None: nobody holds them), by name; `kept=True` keeps a PNG."""
    store = await Store.open(settings.database)
    ids = {}
    for name, values in jobs.items():
        kept = values.pop("kept", False)
        row = dict(source="discord", user_id=7, guild_id=1, channel_id=2, prompt=name, seed=3, size="square",
                   width=64, height=64, steps=2, status="queued", owner=None)
        ids[name] = await store.record(**{**row, **values})
        if kept:
            DrawnImages(drawn_dir(settings.database)).save(ids[name], a_png())
    await store.close()
    return ids


async def statuses(core) -> dict[int, str]:
    db = sqlite3.connect(core.settings.database)
    try:
        return dict(db.execute("SELECT id, status FROM generations"))
    finally:
        db.close()


async def test_recover_returns_kept_images_users_to_tell_and_tickets_as_plain_values(settings):
    old = time.time() - 2 * settings.recovery_max_age
    [deleted] = (await left_behind(settings, deleted_source=dict(status="deleted"))).values()
    ids = await left_behind(
        settings,
        kept_for_hours=dict(status="drawn", created_at=old, kept=True),
        too_old=dict(created_at=old),
        source_gone=dict(strength=0.5, source_id=deleted, source_index=0),
        from_http=dict(source="http", channel_id=None),
        fresh=dict(),
    )
    renderer = FakeRenderer()
    async with open_core(settings, [renderer], checker=None) as core:
        recovery = await core.service.recover()
        [kept] = recovery.kept
        assert kept.job.id == ids["kept_for_hours"] and kept.size == "square"
        assert [(n.job.id, n.kind, n.reason) for n in recovery.notices] == [
            (ids["too_old"], LOST, ""), (ids["source_gone"], FAILED, SOURCE_GONE)]
        [ticket] = recovery.resumed
        assert (ticket.job_id, ticket.user_id, ticket.channel_id) == (ids["fresh"], 7, 2)
        assert (await ticket.result()).job_id == ids["fresh"]
        result = await core.service.kept_result(kept)
        assert result.job_id == ids["kept_for_hours"] and result.png == a_png() and result.seed == 3
        assert await core.service.recover() == type(recovery)()  # each job is taken over once
        await core.service.drain()
        rows = await statuses(core)
    assert renderer.ran == [ids["fresh"]]  # the kept image is not drawn again
    assert rows[ids["too_old"]] == rows[ids["source_gone"]] == rows[ids["from_http"]] == "failed"


class FailsToLoad:
    name = "broken"

    def load(self):
        raise SafetyUnavailable("the safety checker could not be downloaded")

    def score(self, image):
        raise AssertionError("never loaded")


class Raises:
    name = "raises"

    def load(self):
        pass

    def score(self, image):
        raise RuntimeError("the checker's own bug")


async def test_a_checker_that_failed_to_load_leaves_the_kept_image_for_the_next_start(settings):
    ids = await left_behind(settings, drawn=dict(status="drawn", kept=True))
    async with open_core(settings.model_copy(update={"safety": "block"}), [FakeRenderer()], checker=FailsToLoad(),
                         checker_with_model=True) as core:
        [kept] = (await core.service.recover()).kept
        assert await core.service.kept_result(kept) is None
        assert isinstance(core.executor.load_error, SafetyUnavailable)
        rows = await statuses(core)
    assert rows[ids["drawn"]] == Status.DRAWN.value  # not failed: the next start posts it


async def test_a_kept_image_the_checker_can_t_check_is_failed_with_a_reason_for_its_user(settings, caplog):
    ids = await left_behind(settings, drawn=dict(status="drawn", kept=True))
    async with open_core(settings, [FakeRenderer()], checker=Raises()) as core:
        [kept] = (await core.service.recover()).kept
        with pytest.raises(RenderFailed) as failure:
            await core.service.kept_result(kept)
        await core.service.drain()
        rows = await statuses(core)
    assert failure.value.reason == "it could not be checked" and rows[ids["drawn"]] == "failed"
    assert "the checker's own bug" in caplog.text  # logged with its traceback


async def test_housekeeping_survives_a_failing_settings_read_and_a_database_that_refuses_writes(settings, caplog):
    async with open_core(settings, [FakeRenderer()], checker=None) as core:
        async def broken_load():
            raise RuntimeError("the servers table is unreadable")

        core.service.servers.load = broken_load
        await core.service.housekeeping()  # the alive write still happens
        alive = float(await core.store.state("alive_at"))

        async def refused(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        core.store.write = refused
        await core.service.housekeeping()  # raises nothing: the next minute tries again
    assert time.time() - alive < 60
    assert "reading the servers' settings failed" in caplog.text


def test_the_ray_workers_module_does_not_import_torch_before_the_actors_need_it():
    pytest.importorskip("ray")
    code = "import sys, zbot.engine.ray_workers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr
