"""Render workers on a Ray cluster (ZBOT_EXECUTOR=ray): one Ray actor per GPU, each owning one engine.

The bot stays one process with the same executor (executor.py: one queue in arrival order, positions,
ETA over N workers, progress, encoding, shutdown). Each of its worker threads drives one actor through
a `RayRenderer`, which is a Renderer like `Engine`:
- `load()` creates the actor (one GPU, or one CPU for CPU workers) and has it build and load its engine;
- `render()` runs the job in the actor and reports each finished step as the actor answers a long poll
  (one call a step); the image comes back whole and its PNG is encoded here, on the executor's encoder
  thread, while the actor already draws the next job;
- a dead actor (killed, crashed, its node lost) makes `render()` raise WorkerLost: the executor runs
  the job once more on another worker, and this worker's `recover()` waits until Ray has restarted the
  actor (`max_restarts=-1`) and it has loaded its engine again, before the thread takes another job.

Ray is imported by this module only, and this module only when the settings ask for Ray (app.py), so
the default install needs no Ray: `pip install 'zbot[ray]'` brings it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from zbot.core.jobs import Renderer, RenderSpec, WorkerLost
from zbot.engine.model_files import ModelNotFound

try:
    import ray
    from ray import exceptions as ray_errors
except ImportError:  # pragma: no cover - exercised where Ray is missing
    raise ModelNotFound("ZBOT_EXECUTOR=ray needs Ray, which is not installed: "
                        "pip install 'zbot[ray]'") from None

if TYPE_CHECKING:  # the actors need neither the settings' nor the bot's packages
    from zbot.config import Settings

log = logging.getLogger(__name__)

WAIT_LOG_S = 30.0  # how often a worker waiting for Ray (a GPU, a restart) says so in the log


class RenderWorker:
    """The actor's body: one engine, built, loaded and run on one thread of its own (the pipeline's only
    caller, as with the local executor). Ray runs the actor's methods on a few threads so that `progress`
    answers while `render` draws."""

    def __init__(self, make_engine: Callable[[], Renderer]):
        self._make_engine = make_engine
        self._engine: Renderer | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zbot-render")
        self._changed = threading.Condition()
        self._job: int | None = None  # the job being drawn, and its last finished step
        self._step = 0
        self._finished: int | None = None  # the last job drawn (or failed)

    def load(self) -> dict[str, Any]:
        """Build and load the engine (a no-op once loaded); says where this actor runs."""
        self._thread.submit(self._load).result()
        context = ray.get_runtime_context()
        return {"node": context.get_node_id()[:12], "pid": os.getpid(),
                "gpus": [str(gpu) for gpu in context.get_accelerator_ids().get("GPU", [])]}

    def _load(self) -> Renderer:
        if self._engine is None:
            engine = self._make_engine()
            engine.load()
            self._engine = engine
            if hasattr(engine, "warm_up_next"):  # the rest of the warm-up, between renders
                self._thread.submit(self._warm_up_step)
        return self._engine

    def _warm_up_step(self) -> None:
        """One warm-up step on the render thread, then the next one queued behind whatever render was
        submitted meanwhile: a render waits for one step at most."""
        try:
            more = self._engine.warm_up_next()  # type: ignore[union-attr]
        except Exception:
            log.exception("a warm-up step failed; the rest of the warm-up is skipped")
            try:
                self._engine.recover()  # type: ignore[union-attr]
            except Exception:
                log.exception("recovering after the failed warm-up step failed too")
            return
        if more:
            self._thread.submit(self._warm_up_step)

    def render(self, spec: RenderSpec) -> tuple[Any, int]:
        """Draw the job: the image and the number of its last finished step."""

        def on_step(done: int, total: int) -> None:
            with self._changed:
                self._step = done
                self._changed.notify_all()

        with self._changed:
            # A grid sends its images as renders of the same job: a new one must not look finished.
            self._job, self._step, self._finished = spec.job_id, 0, None
        try:
            image = self._thread.submit(lambda: self._load().render(spec, on_step)).result()
            return image, self._step
        finally:
            with self._changed:
                self._job, self._finished = None, spec.job_id
                self._changed.notify_all()

    def progress(self, job_id: int, seen: int, timeout: float = 10.0) -> int:
        """The job's last finished step, once it is past `seen` (or the job is over, or `timeout`)."""
        with self._changed:
            self._changed.wait_for(lambda: (self._job == job_id and self._step > seen)
                                   or self._finished == job_id, timeout)
            return self._step if self._job == job_id else seen

    def recover(self) -> None:
        if self._engine is not None:
            self._thread.submit(self._engine.recover).result()


_RemoteWorker = ray.remote(RenderWorker)


class RayUnavailable(ModelNotFound):
    """Ray can't run the workers as configured; the message, one line, says what to change (a
    ModelNotFound so that the front ends print it like a missing model)."""


def _reraise(exc: BaseException, what: str) -> BaseException:
    """What a Ray error means to the executor: the engine's own exception (a RenderFailed with the usual
    reason, out of memory say), or WorkerLost when the actor itself is gone."""
    if isinstance(exc, ray_errors.RayTaskError):  # the engine raised: hand on its exception as it was
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, Exception) else exc
    if isinstance(exc, ray_errors.RayError):  # the actor died, its process crashed, its node was lost...
        return WorkerLost(f"{what}: {type(exc).__name__}")
    return exc


class RayRenderer:
    """A Renderer whose engine runs in a Ray actor; the executor's thread for it blocks in its calls."""

    def __init__(self, make_engine: Callable[[], Renderer], *, index: int = 0, num_gpus: float = 1,
                 num_cpus: float = 1, on_close: Callable[[], None] | None = None):
        self.make_engine = make_engine
        self.index = index
        # max_restarts=-1: Ray brings a dead actor back (on any node with a free GPU). max_task_retries=0:
        # the executor, not Ray, decides whether a job runs again (once). Three threads: render, progress
        # and a spare, for a load or recover call.
        self.options = dict(num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=-1, max_task_retries=0,
                            max_concurrency=3)
        self.actor = None
        self.where: dict[str, Any] = {}  # node, pid and GPU of the actor, as it last said
        self.running: int | None = None  # the job being drawn
        self.rendered: list[int] = []  # the jobs this worker drew
        self._lost = False
        self._closed = threading.Event()
        self._on_close = on_close

    def __repr__(self) -> str:
        return f"<render worker {self.index} {self.where or 'not started'}>"

    # -- the Renderer protocol (called by the executor's thread for this worker) ----------------

    def load(self) -> None:
        if self.actor is None:  # a new executor on the same workers (tests) keeps the actor
            self.actor = _RemoteWorker.options(**self.options).remote(self.make_engine)
        try:
            self.where = self._wait(self.actor.load.remote(), "start and load its engine")
        except ray_errors.RayError as exc:  # not the engine's own error: those come out as themselves
            log.error("render worker %d could not start: %s", self.index, exc)
            raise RayUnavailable(f"the Ray actor of render worker {self.index} died while starting "
                                 f"({type(exc).__name__}; the log has Ray's reason): is zbot installed on "
                                 "every node, with the same Python and Ray versions as here?") from None
        log.info("render worker %d ready: %s", self.index, self.where)

    def render(self, spec: RenderSpec, on_step: Callable[[int, int], None]) -> Any:
        self.running = spec.job_id
        try:
            done = self.actor.render.remote(spec)
            seen = 0
            while True:  # a long poll for each step (one call a step); works through Ray Client too
                step = self.actor.progress.remote(spec.job_id, seen)
                ready, _ = ray.wait([done, step], num_returns=1)
                if done in ready:
                    break
                seen = self._report(ray.get(step), seen, spec, on_step)
            image, last = ray.get(done)
            self._report(last, seen, spec, on_step)  # the steps that finished with the image
        except Exception as exc:
            error = _reraise(exc, f"render worker {self.index} died drawing job {spec.job_id}")
            self._lost = isinstance(error, WorkerLost)
            if error is exc:
                raise
            raise error from exc
        finally:
            self.running = None
        self.rendered.append(spec.job_id)
        return image

    @staticmethod
    def _report(step: int, seen: int, spec: RenderSpec, on_step: Callable[[int, int], None]) -> int:
        for done in range(seen + 1, step + 1):  # every step, in order, as the local engine does
            on_step(done, spec.denoising_steps)
        return max(seen, step)

    def recover(self) -> None:
        """After a failed render: free the engine's leftovers; after a lost actor: wait until it is back
        with its engine loaded (this worker takes no job meanwhile)."""
        if not self._lost:
            try:
                ray.get(self.actor.recover.remote())
                return
            except ray_errors.RayTaskError:
                return
            except ray_errors.RayError:
                self._lost = True
        self._come_back()

    # -- the bot's side ------------------------------------------------------------------------

    def close(self) -> None:
        """Kill the actor (its GPU is free again); a worker waiting for it to come back stops waiting."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.actor is not None:
            try:
                ray.kill(self.actor, no_restart=True)
            except Exception:
                log.debug("killing render worker %d", self.index, exc_info=True)
            self.actor = None
        if self._on_close is not None:
            self._on_close()

    def _come_back(self) -> None:
        # Ray restarts a dead actor by itself; a call made meanwhile waits for the restart. An actor that
        # is dead for good (restarts used up, killed without restart) is replaced by a new one.
        log.warning("render worker %d was lost; waiting for Ray to restart it", self.index)
        while not self._closed.is_set():
            try:
                self.where = self._wait(self.actor.load.remote(), "come back")
            except ray_errors.ActorDiedError:
                if self._closed.is_set():
                    return
                log.warning("render worker %d is dead for good; starting a new one", self.index)
                try:
                    ray.kill(self.actor, no_restart=True)
                except Exception:
                    pass
                self.actor = _RemoteWorker.options(**self.options).remote(self.make_engine)
                continue
            except ray_errors.RayError:  # unavailable for a moment (restarting): ask again
                time.sleep(0.5)
                continue
            except WorkerLost:  # closed while waiting: the bot is stopping
                return
            self._lost = False
            log.info("render worker %d is back: %s", self.index, self.where)
            return

    def _wait(self, ref: ray.ObjectRef, what: str) -> Any:
        """ray.get, saying in the log while it takes long (no GPU free for the actor, a model loading);
        the engine's own errors come out as themselves (ModelNotFound, say)."""
        began = time.monotonic()
        while True:
            try:
                return ray.get(ref, timeout=WAIT_LOG_S)
            except ray_errors.GetTimeoutError:
                if self._closed.is_set():
                    raise WorkerLost(f"render worker {self.index} was closed") from None
                log.warning("render worker %d has waited %.0f s to %s (a free %s on the cluster?)",
                            self.index, time.monotonic() - began, what,
                            "GPU" if self.options["num_gpus"] else "CPU")
            except ray_errors.RayTaskError as exc:  # the engine raised: its exception, as it was
                raise _reraise(exc, what) from None


# -- wiring: settings -> workers ------------------------------------------------------------------


def _engine_from_settings(settings: Settings) -> Renderer:
    """In the actor's process: the very engine the local executor would build from these settings."""
    # Imported here, in the actor: the driver (`zbot run`) must not import torch before it has logged in.
    from zbot.engine.engine import engine_for

    return engine_for(settings)


class _Connection:
    """The process's one Ray connection: shut down with the last worker if this process started it."""

    def __init__(self, started: bool, users: int):
        self.started, self.users = started, users
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            last = self.users == 0
        if last and self.started and ray.is_initialized():
            ray.shutdown()


def _without_secrets(settings: Settings) -> Settings:
    """The settings with every secret (the Discord token, API keys...) blanked: they travel to the nodes."""
    from pydantic import SecretStr

    blanks = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            blanks[name] = None
        elif isinstance(value, (list, tuple)) and any(isinstance(item, SecretStr) for item in value):
            blanks[name] = type(value)()
    return settings.model_copy(update=blanks)


def connect(address: str | None) -> bool:
    """Join the Ray cluster at `address` (ray://host:10001 or host:6379), or, with None, the cluster that
    RAY_ADDRESS or `ray start` on this machine names, else start a local Ray. True if this started Ray."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, namespace="zbot")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayUnavailable(f"could not start or join {where} ({type(exc).__name__}: {exc}); check "
                             "ZBOT_RAY_ADDRESS, and that the cluster runs the same Ray version") from None
    return True


def make_ray_renderers(settings: Settings) -> list[RayRenderer]:
    """One RayRenderer per worker: ZBOT_WORKERS of them, or one per GPU that Ray sees."""
    started = connect(settings.ray_address)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    on_gpu = settings.device != "cpu"
    if on_gpu and gpus == 0:
        if started:
            ray.shutdown()
        raise RayUnavailable("ZBOT_EXECUTOR=ray: Ray sees no GPU on the cluster; start the GPU nodes (ray "
                             "start --address=HEAD:6379 on each), or set ZBOT_DEVICE=cpu for CPU workers")
    count = settings.workers or (gpus if on_gpu else 1)
    if on_gpu and count > gpus:
        log.warning("ZBOT_WORKERS=%d but Ray sees %d GPUs: %d workers will wait for a GPU to join",
                    count, gpus, count - gpus)
    # Each actor builds its engine from these settings on its own node: the device is the GPU Ray gave it
    # (cuda, whatever cuda:N was set here), and secrets stay in the bot's process.
    engine_settings = _without_secrets(settings).model_copy(update={"device": "cuda" if on_gpu else "cpu"})
    make_engine = functools.partial(_engine_from_settings, engine_settings)
    connection = _Connection(started, count)
    log.info("Ray executor: %d %s workers (Ray sees %d GPUs)", count, "GPU" if on_gpu else "CPU", gpus)
    return [RayRenderer(make_engine, index=index, num_gpus=1 if on_gpu else 0, num_cpus=1,
                        on_close=connection.release) for index in range(count)]
