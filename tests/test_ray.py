"""The Ray executor (ZBOT_EXECUTOR=ray): render workers as Ray actors behind the same executor.

The executor's retry hook is tested first with fake renderers (no Ray needed). The rest runs a local Ray
(one per module, started once: it takes seconds) with two CPU workers on the tiny model; Ray comes with
the test extra, so a missing Ray fails these tests rather than skipping them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
import time
from collections.abc import AsyncIterator

import pytest
from support.botkit import Running, bot_settings, finished, image_of, seed_in
from support.fake_discord import FakeDiscord
from support.renderers import FakeRenderer

from zbot.app import open_core
from zbot.bot.client import ZBot
from zbot.core.executor import Executor
from zbot.core.imaging import encode_png
from zbot.core.jobs import RenderFailed, RenderSpec, ShuttingDown, WorkerLost
from zbot.engine.engine import Engine
from zbot.engine.model_files import ModelNotFound


def spec(job_id: int, steps: int = 4, size: int = 64) -> RenderSpec:
    return RenderSpec(job_id, f"a fox number {job_id}", seed=job_id, width=size, height=size, steps=steps)


# -- the executor's retry hook, with fake renderers -------------------------------------------------


class Dying(FakeRenderer):
    """A fake worker whose process dies under the jobs listed in `dies_on` (a list the workers share:
    once per entry); like a restarting Ray actor, it stays away in recover() until `back` is set."""

    def __init__(self, dies_on: list[int], **kwargs):
        super().__init__(**kwargs)
        self.dies_on = dies_on
        self.lost: list[int] = []
        self.back = threading.Event()

    def render(self, spec, on_step):
        with self._lock:
            dies = spec.job_id in self.dies_on
            if dies:
                self.dies_on.remove(spec.job_id)
        if dies:
            self.lost.append(spec.job_id)
            on_step(1, spec.steps)
            raise WorkerLost("the actor died")
        return super().render(spec, on_step)

    def recover(self) -> None:
        super().recover()
        if self.lost:
            self.back.wait(10)


async def started(renderers: list) -> Executor:
    executor = Executor(renderers, encode_png)
    executor.start()
    await executor.wait_ready()
    return executor


async def test_a_lost_worker_s_job_runs_again_on_another_worker_and_settles_once():
    dies_on = [1]
    workers = [Dying(dies_on), Dying(dies_on)]
    executor = await started(workers)
    starts = []
    result = await executor.submit(spec(1), on_start=lambda at: starts.append(1))
    [victim] = [w for w in workers if w.lost]
    [other] = [w for w in workers if w is not victim]
    assert result.job_id == 1 and result.png.startswith(b"\x89PNG")
    assert other.ran == [1] and victim.ran == [] and victim.recovered == 1
    assert starts == [1, 1]  # started twice, settled once
    victim.back.set()
    assert (await executor.submit(spec(2))).job_id == 2
    await executor.shutdown(timeout=10)


async def test_a_job_whose_worker_dies_twice_fails_with_a_reason_and_the_next_one_runs():
    worker = Dying([1, 1])
    worker.back.set()
    executor = await started([worker])
    bad, good = executor.submit(spec(1)), executor.submit(spec(2))
    with pytest.raises(RenderFailed, match="the render worker died twice"):
        await bad
    assert (await good).job_id == 2
    await executor.shutdown(timeout=10)


async def test_a_job_lost_during_shutdown_stays_queued():
    gate = threading.Event()

    class DiesAtShutdown(FakeRenderer):
        def render(self, spec, on_step):
            gate.wait(10)
            raise WorkerLost("the node went away")

    executor = await started([DiesAtShutdown()])
    job = executor.submit(spec(1))
    while executor.position(1) != 0:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(executor.shutdown(timeout=10))
    while not executor.closing:
        await asyncio.sleep(0.01)
    gate.set()
    await stopping
    with pytest.raises(ShuttingDown):
        await job


# -- a local Ray with two CPU workers and the tiny model --------------------------------------------


class SlowEngine(Engine):
    """The tiny engine, `delay` seconds slower per step: long enough renders to watch and to kill."""

    def __init__(self, *args, delay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay = delay

    def render(self, spec, on_step):
        def slow_step(done: int, total: int) -> None:
            time.sleep(self.delay)
            on_step(done, total)

        return super().render(spec, slow_step)


@pytest.fixture(scope="module")
def ray_local():
    import ray  # in the test extra: a missing Ray fails these tests instead of skipping them
    # Logical CPUs, not cores: room for two workers here and two more in the end-to-end test.
    ray.init(num_cpus=6, include_dashboard=False, object_store_memory=256 * 1024**2, namespace="zbot-tests",
             log_to_driver=False)
    # The actors unpickle SlowEngine, defined here; the workers can't import this test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def workers(ray_local, tiny_model):
    """Two CPU workers (Ray actors) that the tests share; each test's executor drives them."""
    from zbot.engine.ray_workers import RayRenderer

    make_engine = functools.partial(SlowEngine, str(tiny_model), device="cpu", compile="off", delay=0.2)
    renderers = [RayRenderer(make_engine, index=i, num_gpus=0, num_cpus=1) for i in range(2)]
    yield renderers
    for renderer in renderers:
        renderer.close()


@pytest.fixture
async def executor(workers):
    for renderer in workers:
        renderer.rendered.clear()
    executor = Executor(workers, encode_png)
    executor.start()
    await asyncio.wait_for(executor.wait_ready(), 120)
    yield executor
    await executor.shutdown(timeout=60)


async def test_jobs_spread_over_both_workers_in_arrival_order_with_every_step(executor, workers):
    assert executor.workers == 2 and {w.where["pid"] for w in workers}.__len__() == 2
    starts, steps = [], {}
    futures = [executor.submit(spec(i), on_start=lambda at, i=i: starts.append(i),
                               on_progress=lambda p: steps.setdefault(p.job_id, []).append(p.step))
               for i in range(1, 7)]
    while not (executor.position(1) == executor.position(2) == 0):
        await asyncio.sleep(0.01)
    # Two running, four waiting: the next two share a round, the two after them wait one more.
    assert [executor.position(i) for i in range(3, 7)] == [1, 2, 3, 4]
    assert executor.eta(3) == pytest.approx(executor.eta(4), abs=0.05) and executor.eta(4) < executor.eta(5)
    results = await asyncio.gather(*futures)

    assert [r.job_id for r in results] == list(range(1, 7)) and starts == list(range(1, 7))
    assert all(r.png.startswith(b"\x89PNG") and (r.seed, r.width) == (r.job_id, 64) for r in results)
    assert steps == {i: [1, 2, 3, 4] for i in range(1, 7)}  # each step, in order, through Ray
    ran = [w.rendered for w in workers]
    assert all(ran) and sorted(ran[0] + ran[1]) == list(range(1, 7))


async def test_a_killed_actor_s_job_completes_on_the_other_worker(executor, workers, ray_local):
    starts, steps = [], []
    job = executor.submit(spec(1, steps=10), on_start=lambda at: starts.append(at),
                          on_progress=lambda p: steps.append(p.step))
    while not any(w.running == 1 for w in workers) or len(steps) < 2:  # mid-render: steps done, more to go
        await asyncio.sleep(0.01)
    [victim] = [w for w in workers if w.running == 1]
    [other] = [w for w in workers if w is not victim]
    old_pid = victim.where["pid"]
    ray_local.kill(victim.actor, no_restart=False)  # as if its process died; Ray restarts it

    result = await asyncio.wait_for(job, 60)
    assert result.job_id == 1 and other.rendered == [1] and victim.rendered == []
    assert len(starts) == 2
    # The killed worker comes back (a new process, its model loaded again) and takes work again.
    for _ in range(600):
        if victim.where["pid"] != old_pid:
            break
        await asyncio.sleep(0.1)
    assert victim.where["pid"] != old_pid
    more = await asyncio.gather(*(executor.submit(spec(i)) for i in range(2, 6)))
    assert [r.job_id for r in more] == [2, 3, 4, 5] and victim.rendered and len(other.rendered) > 1


async def test_a_job_whose_worker_is_killed_twice_fails_with_a_message(executor, workers, ray_local):
    steps = []
    job = executor.submit(spec(1, steps=10), on_progress=lambda p: steps.append(p.step))
    for _attempt in range(2):
        steps.clear()
        while not any(w.running == 1 for w in workers) or not steps:  # this attempt has drawn a step
            await asyncio.sleep(0.01)
        [victim] = [w for w in workers if w.running == 1]
        ray_local.kill(victim.actor, no_restart=False)
        while victim.running == 1:
            await asyncio.sleep(0.01)
    with pytest.raises(RenderFailed, match="the render worker died twice"):
        await asyncio.wait_for(job, 60)
    assert (await asyncio.wait_for(executor.submit(spec(2)), 120)).job_id == 2  # both come back


# -- end to end: the bot against the fake Discord, with ZBOT_EXECUTOR=ray ----------------------------


@contextlib.asynccontextmanager
async def running_ray_bot(fake: FakeDiscord, settings) -> AsyncIterator[Running]:
    """botkit.running_bot, but the core builds its own renderers from the settings: Ray actors."""
    async with open_core(settings) as core:
        await asyncio.wait_for(core.executor.wait_ready(), 120)
        bot = ZBot(settings, core.service, guild_ready_timeout=0)
        async with fake.running(bot):
            yield Running(fake, core, bot, engine=None)
            await core.executor.shutdown(timeout=30)
            await bot.delivery.wait(30)


async def test_draw_and_reroll_through_discord_with_the_ray_executor(ray_local, fake, tmp_path, tiny_model):
    # One worker (two are the module's `workers`, above): the bot's Ray path, one model load fewer.
    settings = bot_settings(tmp_path, tiny_model, executor="ray", workers=1)
    async with running_ray_bot(fake, settings) as run:
        renderers = run.core.executor._renderers
        assert [type(r).__name__ for r in renderers] == ["RayRenderer"]
        ix = await fake.slash("draw", {"prompt": "a red fox in the snow"})
        first = await ix.wait_original(finished, timeout=90)
        click = await fake.click(first, first.custom_ids[0])
        second = await click.wait_original(finished, timeout=60)
        await run.settle()
        rows = await run.core.store.query("SELECT id, seed, status, parent_id, message_id FROM generations")

    assert ix.response.at - ix.created_at < 3
    assert image_of(first).size == (1024, 1024) and "a red fox in the snow" in first.content
    assert any("Drawing" in edit.payload.get("content", "") for edit in first.edits)  # steps came through
    assert seed_in(second) != seed_in(first) and image_of(second).tobytes() != image_of(first).tobytes()
    assert [(r["status"], r["parent_id"]) for r in rows] == [("posted", None), ("posted", 1)]
    assert [r["message_id"] for r in rows] == [first.id, second.id]  # each posted once
    assert all(r.actor is None for r in renderers)  # the core killed its actors on the way out


async def test_a_model_that_fails_to_load_in_the_actor_is_reported(ray_local, tmp_path, tiny_model):
    settings = bot_settings(tmp_path, tiny_model, executor="ray", workers=1, model=str(tmp_path / "none"))
    async with open_core(settings) as core:
        with pytest.raises(ModelNotFound, match="no such directory"):
            await asyncio.wait_for(core.executor.wait_ready(), 120)


def test_an_actor_warms_up_between_renders_on_its_render_thread():
    """RenderWorker (the actor's body, here without Ray): after load, the warm-up left runs one step at a
    time on the render thread, and a render submitted meanwhile goes in after the step under way."""
    from zbot.engine.ray_workers import RenderWorker

    log: list[str] = []
    step_running = threading.Event()

    class Warming(FakeRenderer):
        left = 3

        def warm_up_next(self) -> bool:
            step_running.set()
            time.sleep(0.05)
            self.left -= 1
            log.append(f"warm{2 - self.left}")
            return self.left > 0

        def render(self, spec, on_step):
            log.append(f"job{spec.job_id}")
            return super().render(spec, on_step)

    worker = RenderWorker(Warming)
    worker._thread.submit(worker._load).result()
    assert step_running.wait(5)
    image, step = worker.render(RenderSpec(1, "a fox", 1, 16, 16, 2))
    assert image.size == (16, 16) and step == 2
    deadline = time.monotonic() + 5
    while len(log) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log == ["warm0", "job1", "warm1", "warm2"]
