"""The GPU executor: worker threads that each own one renderer, fed from one queue in arrival order.

The shape is datasette's write thread: jobs arrive on a queue, results go back to the event loop with
`call_soon_threadsafe`, a future the caller gave up on is skipped, shutdown is a flag plus a join.
With one GPU there is one worker, so its thread is the pipeline's only caller. Encoding the image
runs on a separate thread so the GPU starts the next job while the last image is still being encoded.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from zbot.core.jobs import (
    BrokenImage,
    Cancelled,
    Picture,
    Progress,
    Renderer,
    RenderFailed,
    RenderSpec,
    Result,
    ShuttingDown,
    WorkerLost,
)

log = logging.getLogger(__name__)


@dataclass
class _Job:
    spec: RenderSpec
    future: asyncio.Future
    on_progress: Callable[[Progress], None] | None
    on_start: Callable[[float], None] | None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    lost: int = 0  # times a worker died under this job (WorkerLost); the second time fails it
    pictures: dict[int, Picture] = field(default_factory=dict)  # encoded so far, by image index
    render_s: float = 0.0
    failed: bool = False  # one of its images could not be encoded or checked: the job is settled


def describe_failure(exc: BaseException) -> str:
    """A short reason safe to show a user (no traceback, no paths)."""
    if isinstance(exc, BrokenImage):
        return exc.reason
    name = type(exc).__name__
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return "the GPU ran out of memory"
    return f"the renderer failed ({name})"


class Executor:
    def __init__(self, renderers: list[Renderer], encode: Callable[[Any], bytes], *,
                 inspect: Callable[[Any], Any] | None = None, default_render_s: float = 1.0,
                 history: int = 20, warm_up_idle: bool = True):
        if not renderers:
            raise ValueError("an executor needs at least one renderer")
        self._renderers = renderers
        self._encode = encode
        self._inspect = inspect  # zbot.engine.safety.Inspector: a verdict for each image, or BrokenImage
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: dict[int, _Job] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zbot-encode")
        self._render_times: collections.deque[float] = collections.deque(maxlen=history)
        self._default_render_s = default_render_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loaded = 0
        self._serving: set[threading.Thread] = set()  # workers past loading, taking jobs
        self._warming: set[threading.Thread] = set()  # workers in a warm-up step (no job in hand)
        self._warm_up_idle = warm_up_idle
        self._stopping: asyncio.Future | None = None
        self.load_error: BaseException | None = None
        self.ready = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers; each loads its renderer first. Jobs submitted meanwhile wait."""
        self._loop = asyncio.get_running_loop()
        for index, renderer in enumerate(self._renderers):
            thread = threading.Thread(target=self._work, args=(renderer,), name=f"zbot-gpu-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def wait_ready(self) -> None:
        await self.ready.wait()
        if self.load_error is not None:
            raise self.load_error

    async def shutdown(self, timeout: float = 120.0) -> list[RenderSpec]:
        """Stop taking jobs, give running ones `timeout` seconds to finish, and hand back the ones that
        never started. Every job's future is settled when this returns: a render still running at the
        deadline gets ShuttingDown (its row stays as it was; the next start draws it again). Calling it
        again waits for the same shutdown, it doesn't start a second one."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        return await asyncio.shield(self._stopping)

    async def _stop(self, timeout: float) -> list[RenderSpec]:
        with self._cond:
            self._closing = True
            abandoned = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in abandoned:
            self._settle(job, error=ShuttingDown())
        await asyncio.to_thread(self._join, timeout)
        with self._cond:
            overdue = list(self._running.values())
        for job in overdue:
            log.warning("job %s was still rendering when the shutdown's %.0f s were up; it is drawn again "
                        "at the next start", job.spec.job_id, timeout)
            self._settle(job, error=ShuttingDown())
        # Images rendered in time are still being encoded: let them finish, so their futures settle.
        await asyncio.to_thread(self._encoder.shutdown, wait=True)
        return [job.spec for job in abandoned]

    def _join(self, timeout: float) -> None:
        # Only workers that loaded their renderer can be running a job. One still loading (a model, a Ray
        # actor waiting for a GPU) runs nothing, and its daemon thread ends with the process.
        # One in a warm-up step holds no job either: its step (a compile, seconds) is not waited for.
        deadline = time.monotonic() + timeout
        for thread in list(self._serving):
            while thread.is_alive() and thread not in self._warming and time.monotonic() < deadline:
                thread.join(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- the asyncio side -----------------------------------------------------------------------

    def submit(self, spec: RenderSpec, *, on_progress: Callable[[Progress], None] | None = None,
               on_start: Callable[[float], None] | None = None) -> asyncio.Future:
        """Queue a job; the future resolves to a Result or raises RenderFailed/ShuttingDown.
        The callbacks run on the event loop."""
        assert self._loop is not None, "start() the executor first"
        job = _Job(spec, self._loop.create_future(), on_progress, on_start)
        with self._cond:
            if self._closing:
                raise ShuttingDown()
            self._queue.append(job)
            self._cond.notify()
        return job.future

    @property
    def closing(self) -> bool:
        """True once shutdown has begun: no more jobs are taken."""
        return self._closing

    @property
    def workers(self) -> int:
        return len(self._renderers)

    @property
    def depth(self) -> int:
        """Jobs waiting plus jobs running."""
        with self._cond:
            return len(self._queue) + len(self._running)

    @property
    def images_ahead(self) -> int:
        """Images of work in the jobs waiting and running (an upscale counts as its weight)."""
        with self._cond:
            return sum(job.spec.work for job in (*self._queue, *self._running.values()))

    @property
    def mean_render_s(self) -> float:
        """Recent seconds per image of work (an upscale's time divided by its weight)."""
        times = list(self._render_times)
        return sum(times) / len(times) if times else self._default_render_s

    def cancel(self, job_id: int, *, by_admin: bool = False) -> bool:
        """Take a job that has not started out of the queue (its future raises Cancelled); False if it is
        running already, or unknown."""
        with self._cond:
            for job in self._queue:
                # A job back in the queue after its worker died has started once: its row says so.
                if job.spec.job_id == job_id and job.lost == 0:
                    self._queue.remove(job)
                    break
            else:
                return False
        self._settle(job, error=Cancelled(by_admin))
        return True

    def position(self, job_id: int) -> int | None:
        """0 while the job runs, 1 if it is next, 2 after that...; None once it is finished."""
        with self._cond:
            if job_id in self._running:
                return 0
            for index, job in enumerate(self._queue):
                if job.spec.job_id == job_id:
                    return index + 1
        return None

    def eta(self, job_id: int) -> float | None:
        """Seconds until the job is likely finished: the queue ahead of it played out on the workers (each
        job takes its images times the recent mean per image, on the worker that frees up first)."""
        mean = self.mean_render_s
        with self._cond:
            running = self._running.get(job_id)
            if running is not None:
                return self._left(running, mean)
            free = [self._left(job, mean) for job in self._running.values()]
            free += [0.0] * max(0, self.workers - len(free))  # idle workers
            heapq.heapify(free)
            for job in self._queue:
                done = heapq.heappop(free) + job.spec.work * mean
                if job.spec.job_id == job_id:
                    return done
                heapq.heappush(free, done)
        return None

    @staticmethod
    def _left(job: _Job, mean: float) -> float:
        return max(0.0, job.spec.work * mean - (time.time() - (job.started_at or time.time())))

    # -- the worker threads ---------------------------------------------------------------------

    def _work(self, renderer: Renderer) -> None:
        try:
            renderer.load()
        except BaseException as exc:  # a model that won't load: wait_ready() raises it to the front end
            self.load_error = exc
            self._call(self.ready.set)
            return
        with self._cond:
            self._loaded += 1
            self._serving.add(threading.current_thread())
            if self._loaded == len(self._renderers):
                self._call(self.ready.set)
        warming = self._warm_up_idle and hasattr(renderer, "warm_up_next")
        while True:
            with self._cond:
                while not self._queue and not self._closing and not warming:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._queue.popleft() if self._queue else None
                if job is not None:
                    if job.future.cancelled():
                        continue  # its awaiter gave up; nothing to do
                    job.started_at = time.time()
                    self._running[job.spec.job_id] = job
            if job is None:  # idle: one warm-up step (a job arriving meanwhile waits for that step only)
                self._warming.add(threading.current_thread())
                try:
                    warming = self._warm_up_step(renderer)
                finally:
                    self._warming.discard(threading.current_thread())
            else:
                self._run(renderer, job)

    def _warm_up_step(self, renderer: Renderer) -> bool:
        try:
            return bool(renderer.warm_up_next())  # type: ignore[attr-defined]
        except Exception:  # serving goes on: a size not warmed up runs eagerly where it would compile
            log.exception("a warm-up step failed; the rest of the warm-up is skipped")
            self._recover(renderer)
            return False

    def _run(self, renderer: Renderer, job: _Job) -> None:
        """Draw the job's images one after the other, no other job in between; each goes to the encoder
        thread as soon as it is drawn, while the next one renders."""
        if job.on_start is not None:
            self._call(job.on_start, job.started_at)
        job.pictures.clear()
        job.failed, job.render_s = False, 0.0
        for index in range(job.spec.count):
            if job.failed:  # an image already drawn could not be encoded or checked: the job has failed
                break
            if not self._render_one(renderer, job, index):
                return
        self._finish(job)

    def _render_one(self, renderer: Renderer, job: _Job, index: int) -> bool:
        spec = job.spec

        def on_step(step: int, steps: int) -> None:
            if job.on_progress is not None:
                self._call(job.on_progress, Progress(spec.job_id, step, steps, index + 1, spec.count))

        began = time.perf_counter()
        try:
            image = renderer.render(spec.image(index) if spec.count > 1 else spec, on_step)
        except WorkerLost as exc:
            # Retry hook (the Ray executor): the worker died under the job. Put the job back at the front
            # of the queue, once, so another worker takes it while this thread waits in recover() for
            # its own worker to come back (Ray restarts the actor, which loads its model again).
            log.warning("job %s lost its render worker (%s)", job.spec.job_id, exc)
            self._retry_or_fail(job)
            self._recover(renderer)
            return False
        except Exception as exc:
            log.exception("job %s failed to render", job.spec.job_id)
            self._recover(renderer)
            self._finish(job)
            job.failed = True  # images drawn before it need no encoding
            self._settle(job, error=RenderFailed(describe_failure(exc)))
            return False
        render_s = time.perf_counter() - began
        self._render_times.append(render_s / max(1, spec.weight))
        job.render_s += render_s
        # Encode on another thread: this one goes straight back to the GPU for the next image.
        try:
            self._encoder.submit(self._encode_and_settle, job, index, image)
        except RuntimeError:  # the shutdown's deadline passed while this rendered: the job was settled then
            self._settle(job, error=ShuttingDown())
            return False
        return True

    def _recover(self, renderer: Renderer) -> None:
        try:
            renderer.recover()
        except Exception:
            log.exception("recovering after a failed render failed too")

    def _retry_or_fail(self, job: _Job) -> None:
        """After WorkerLost: requeue the job at the front the first time; fail it the second time (its
        future settles exactly once either way). During shutdown it stays queued in the database."""
        with self._cond:
            self._running.pop(job.spec.job_id, None)
            job.lost += 1
            if job.lost == 1 and not self._closing:
                job.started_at = None
                self._queue.appendleft(job)
                self._cond.notify()
                return
        error = ShuttingDown() if job.lost == 1 else RenderFailed("the render worker died twice")
        self._settle(job, error=error)

    def _finish(self, job: _Job) -> None:
        with self._cond:
            self._running.pop(job.spec.job_id, None)

    def _encode_and_settle(self, job: _Job, index: int, image: Any) -> None:
        """On the encoder thread: check and encode one image; the job settles with its last one."""
        if job.failed:
            return  # an earlier image of the job failed: it is settled already
        try:
            verdict = self._inspect(image) if self._inspect is not None else None
        except BrokenImage as exc:
            log.warning("job %s: %s", job.spec.job_id, exc.reason)
            return self._fail(job, exc.reason)
        except Exception as exc:  # never pass an image the check could not look at
            log.exception("job %s: the safety check failed", job.spec.job_id)
            return self._fail(job, f"the safety check failed ({type(exc).__name__})")
        try:
            png = self._encode(image)
        except Exception as exc:
            log.exception("job %s failed to encode", job.spec.job_id)
            return self._fail(job, f"the image could not be encoded ({type(exc).__name__})")
        spec = job.spec
        job.pictures[index] = Picture(spec.seeds[index], png, verdict)
        if len(job.pictures) < spec.count:
            return
        wait_s = (job.started_at or job.submitted_at) - job.submitted_at
        pictures = tuple(job.pictures[i] for i in range(spec.count))
        self._settle(job, result=Result(spec.job_id, pictures, spec.width, spec.height, spec.steps, spec.prompt,
                                        job.render_s, wait_s, style=spec.style))

    def _fail(self, job: _Job, reason: str) -> None:
        job.failed = True
        self._settle(job, error=RenderFailed(reason))

    def _settle(self, job: _Job, *, result: Result | None = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():
                return  # the awaiter was cancelled; nothing to do
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        self._call(settle)

    def _call(self, fn: Callable, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)
