import asyncio
import threading

import pytest
import torch
from PIL import Image
from support.renderers import FakeRenderer

from zbot.core.executor import Executor
from zbot.core.imaging import encode_png
from zbot.core.jobs import RenderFailed, RenderSpec, ShuttingDown


def spec(job_id: int, prompt: str = "a fox", steps: int = 4) -> RenderSpec:
    return RenderSpec(job_id, prompt, seed=job_id, width=16, height=16, steps=steps)


@pytest.fixture
async def running():
    started = []

    async def start(renderer, encode=encode_png):
        executor = Executor([renderer], encode)
        executor.start()
        await executor.wait_ready()
        started.append(executor)
        return executor

    yield start
    for executor in started:
        await executor.shutdown(timeout=10)


async def test_jobs_run_one_at_a_time_in_arrival_order_on_one_thread(running):
    renderer = FakeRenderer(delay=0.01)
    executor = await running(renderer)
    futures = [executor.submit(spec(i)) for i in range(1, 11)]
    results = await asyncio.gather(*futures)
    assert renderer.ran == list(range(1, 11))
    assert [r.job_id for r in results] == list(range(1, 11))
    assert renderer.max_active == 1
    assert len(renderer.threads) == 1 and threading.get_ident() not in renderer.threads
    assert all(r.png.startswith(b"\x89PNG") for r in results)


async def test_a_failing_render_fails_that_job_and_the_next_one_runs(running):
    renderer = FakeRenderer(fail_prompts=("bad",))
    executor = await running(renderer)
    bad = executor.submit(spec(1, "bad"))
    good = executor.submit(spec(2, "good"))
    with pytest.raises(RenderFailed, match="renderer failed"):
        await bad
    assert (await good).job_id == 2
    assert renderer.recovered == 1


async def test_out_of_memory_is_reported_as_such(running):
    class OutOfMemory(FakeRenderer):
        def render(self, spec, on_step):
            if spec.job_id == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return super().render(spec, on_step)

    renderer = OutOfMemory()
    executor = await running(renderer)
    first, second = executor.submit(spec(1)), executor.submit(spec(2))
    with pytest.raises(RenderFailed, match="ran out of memory"):
        await first
    assert (await second).job_id == 2 and renderer.recovered == 1


async def test_progress_arrives_on_the_event_loop_for_each_step(running):
    executor = await running(FakeRenderer())
    seen = []
    loop_thread = threading.get_ident()
    await executor.submit(spec(1, steps=5), on_progress=lambda p: seen.append((p.step, threading.get_ident())))
    await asyncio.sleep(0)
    assert [step for step, _ in seen] == [1, 2, 3, 4, 5]
    assert {thread for _, thread in seen} == {loop_thread}


async def test_positions_and_eta_follow_the_queue(running):
    renderer = FakeRenderer()
    renderer.gate.clear()
    executor = await running(renderer)
    futures = [executor.submit(spec(i)) for i in (1, 2, 3)]
    while executor.position(1) != 0:
        await asyncio.sleep(0.01)
    assert [executor.position(i) for i in (1, 2, 3)] == [0, 1, 2]
    assert executor.eta(1) <= executor.eta(2) < executor.eta(3)
    assert executor.depth == 3
    renderer.gate.set()
    await asyncio.gather(*futures)
    assert executor.position(1) is None and executor.eta(3) is None


async def test_encoding_happens_off_the_gpu_thread_while_the_next_job_renders(running):
    renderer = FakeRenderer()
    encode_threads, encode_started = set(), threading.Event()
    release = threading.Event()

    def slow_encode(image: Image.Image) -> bytes:
        encode_threads.add(threading.get_ident())
        encode_started.set()
        release.wait(10)
        return encode_png(image)

    executor = await running(renderer, slow_encode)
    first, second = executor.submit(spec(1)), executor.submit(spec(2))
    await asyncio.to_thread(encode_started.wait, 10)
    # The first image is still being encoded, yet the GPU thread has already rendered the second.
    for _ in range(200):
        if renderer.ran == [1, 2]:
            break
        await asyncio.sleep(0.01)
    assert renderer.ran == [1, 2]
    release.set()
    await asyncio.gather(first, second)
    assert encode_threads.isdisjoint(renderer.threads)


async def test_shutdown_finishes_the_running_job_and_hands_back_the_queued_ones():
    renderer = FakeRenderer()
    renderer.gate.clear()
    executor = Executor([renderer], encode_png)
    executor.start()
    futures = [executor.submit(spec(i)) for i in (1, 2, 3)]
    while executor.position(1) != 0:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(executor.shutdown(timeout=10))
    while not executor.closing:
        await asyncio.sleep(0.01)
    renderer.gate.set()
    abandoned = await stopping
    assert [s.job_id for s in abandoned] == [2, 3]
    assert (await futures[0]).job_id == 1
    for future in futures[1:]:
        with pytest.raises(ShuttingDown):
            await future
    with pytest.raises(ShuttingDown):
        executor.submit(spec(4))


async def test_a_model_that_fails_to_load_is_reported():
    class Broken(FakeRenderer):
        def load(self):
            raise FileNotFoundError("no weights")

    executor = Executor([Broken()], encode_png)
    executor.start()
    with pytest.raises(FileNotFoundError):
        await asyncio.wait_for(executor.wait_ready(), 5)
    await executor.shutdown(timeout=5)


async def test_a_render_that_outlives_the_shutdown_deadline_settles_its_job_and_shutdown_returns(settings):
    from zbot.app import open_core
    from zbot.core.jobs import DrawRequest

    renderer = FakeRenderer()
    renderer.gate.clear()  # the render hangs (a stuck GPU, a huge image) well past the deadline
    try:
        async with open_core(settings, [renderer]) as core:
            ticket = await core.service.submit(DrawRequest(user_id=1, prompt="stuck", channel_id=5))
            while ticket.position() != 0:
                await asyncio.sleep(0.01)
            await asyncio.wait_for(core.executor.shutdown(timeout=0.2), 10)
            with pytest.raises(ShuttingDown):
                await asyncio.wait_for(ticket.result(), 10)
            # Shutting down again (open_core's exit does) waits for the same shutdown, not a second one.
            await asyncio.wait_for(core.executor.shutdown(timeout=60), 5)
            await asyncio.wait_for(core.service.drain(), 10)
            status = (await core.store.get(ticket.job_id)).status
    finally:
        renderer.gate.set()  # let the worker thread end; its job was settled long ago
    assert status == "running"  # as it was: the next start draws it again


async def test_shutdown_waits_for_a_running_job_while_another_worker_is_still_loading():
    loading = threading.Event()

    class NeverLoads(FakeRenderer):  # a Ray actor waiting for a GPU that never comes
        def load(self):
            loading.wait(30)

    renderer = FakeRenderer()
    renderer.gate.clear()
    executor = Executor([renderer, NeverLoads()], encode_png)
    executor.start()
    try:
        job = executor.submit(spec(1))
        while executor.position(1) != 0:
            await asyncio.sleep(0.01)
        assert not executor.ready.is_set()
        stopping = asyncio.create_task(executor.shutdown(timeout=30))
        while not executor.closing:
            await asyncio.sleep(0.01)
        assert not stopping.done()  # waiting for the running render
        renderer.gate.set()
        await asyncio.wait_for(stopping, 10)
        assert (await asyncio.wait_for(job, 10)).job_id == 1
    finally:
        loading.set()


async def test_a_job_of_several_images_runs_them_back_to_back_and_the_eta_counts_them(running):
    from dataclasses import replace

    renderer = FakeRenderer()
    renderer.gate.clear()
    executor = await running(renderer)  # no renders yet: one second an image, by default
    seen = []
    first = executor.submit(spec(1))
    grid = executor.submit(replace(spec(2), count=3),
                           on_progress=lambda p: seen.append((p.image, p.images, p.step)))
    last = executor.submit(spec(3))
    while executor.position(1) != 0:
        await asyncio.sleep(0.01)
    eta_1, eta_2, eta_3 = executor.eta(1), executor.eta(2), executor.eta(3)
    assert eta_2 == pytest.approx(eta_1 + 3, abs=0.05) and eta_3 == pytest.approx(eta_1 + 4, abs=0.05)
    renderer.gate.set()
    results = await asyncio.gather(first, grid, last)
    assert renderer.ran == [1, 2, 2, 2, 3]  # the grid's three images with nothing in between
    assert [p.seed for p in results[1].pictures] == [2, 3, 4]
    assert (1, 3, 4) in seen and (3, 3, 4) in seen


async def test_an_upscale_counts_its_weight_in_the_eta_and_the_images_ahead(running):
    from dataclasses import replace

    renderer = FakeRenderer()
    renderer.gate.clear()
    executor = await running(renderer)  # one second an image of work, by default
    first = executor.submit(spec(1))
    upscale = executor.submit(replace(spec(2), weight=4))
    last = executor.submit(spec(3))
    while executor.position(1) != 0:
        await asyncio.sleep(0.01)
    assert executor.images_ahead == 6
    assert executor.eta(3) == pytest.approx(executor.eta(1) + 5, abs=0.05)  # the upscale is four images' work
    renderer.gate.set()
    await asyncio.gather(first, upscale, last)


class WarmingRenderer(FakeRenderer):
    """A renderer with warm-up left after load (as the engine has its other sizes): each step takes a
    while and is recorded in `log` beside the jobs, so the test sees what ran when."""

    def __init__(self, steps: int, step_s: float = 0.05, fail_at: int | None = None):
        super().__init__()
        self.left, self.step_s, self.fail_at = steps, step_s, fail_at
        self.log: list[str] = []
        self.warm_threads: set[int] = set()
        self.step_started = threading.Event()

    def warm_up_next(self) -> bool:
        self.warm_threads.add(threading.get_ident())
        self.step_started.set()
        step = len([entry for entry in self.log if entry.startswith("warm")])
        if step == self.fail_at:
            self.log.append(f"warm{step} failed")
            raise RuntimeError("compiler crashed")
        threading.Event().wait(self.step_s)
        self.left -= 1
        self.log.append(f"warm{step}")
        return self.left > 0

    def render(self, spec, on_step):
        self.log.append(f"job{spec.job_id}")
        return super().render(spec, on_step)


async def test_the_warm_up_left_after_load_runs_while_idle_and_a_job_waits_one_step_at_most(running):
    renderer = WarmingRenderer(steps=4, step_s=0.1)
    executor = await running(renderer)
    assert await asyncio.to_thread(renderer.step_started.wait, 5)  # the first step is under way
    result = await executor.submit(spec(1))
    assert result.job_id == 1
    # The job went in right after the step that was running when it arrived, before the next ones.
    assert renderer.log[:2] == ["warm0", "job1"]
    for _ in range(100):
        if renderer.left == 0:
            break
        await asyncio.sleep(0.02)
    assert renderer.log == ["warm0", "job1", "warm1", "warm2", "warm3"]
    assert renderer.warm_threads == renderer.threads  # the pipeline's own thread, nothing else
    assert (await executor.submit(spec(2))).job_id == 2  # nothing left to warm: jobs as before


async def test_a_failing_warm_up_step_is_logged_and_serving_goes_on(running, caplog):
    renderer = WarmingRenderer(steps=3, fail_at=1)
    executor = await running(renderer)
    for _ in range(100):
        if "warm1 failed" in renderer.log:
            break
        await asyncio.sleep(0.02)
    assert (await executor.submit(spec(1))).job_id == 1
    assert renderer.log == ["warm0", "warm1 failed", "job1"]  # no further step after the failure
    assert renderer.recovered == 1
    assert "a warm-up step failed" in caplog.text


async def test_shutdown_does_not_wait_for_a_warm_up_step():
    renderer = WarmingRenderer(steps=2, step_s=1.5)
    executor = Executor([renderer], encode_png)
    executor.start()
    await executor.wait_ready()
    assert (await asyncio.wait_for(asyncio.shield(executor.submit(spec(1))), 10)).job_id == 1
    began = asyncio.get_running_loop().time()
    assert await executor.shutdown(timeout=10) == []
    assert asyncio.get_running_loop().time() - began < 1.0  # not the 1.5 s step under way


async def test_a_one_shot_executor_does_not_warm_up():
    renderer = WarmingRenderer(steps=3)
    executor = Executor([renderer], encode_png, warm_up_idle=False)  # `zbot draw`: draw and leave
    executor.start()
    await executor.wait_ready()
    assert (await executor.submit(spec(1))).job_id == 1
    await asyncio.sleep(0.1)
    await executor.shutdown(timeout=10)
    assert renderer.log == ["job1"]
