"""Wiring: build the core once from the settings and hand it to whichever front end runs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zbot.config import Settings
from zbot.core.drawn import DrawnImages, drawn_dir
from zbot.core.executor import Executor
from zbot.core.imaging import encode_png
from zbot.core.instance import Instance
from zbot.core.jobs import Renderer
from zbot.core.lifecycle import Lifecycle
from zbot.core.server_settings import ServerSettings
from zbot.core.service import Service
from zbot.core.store import Store
from zbot.engine.model_files import is_local, resolve_model
from zbot.engine.safety import Checker, Inspector, SafetyUnavailable, local_checker_folder, make_checker
from zbot.logs import quiet_model_libraries
from zbot.metrics import Metrics

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 10.0  # at shutdown, how long database writes that failed are tried again


class StartError(Exception):
    """Why zbot could not start, in one line."""


@dataclass
class Core:
    settings: Settings
    store: Store
    executor: Executor
    service: Service
    metrics: Metrics
    lifecycle: Lifecycle
    inspector: Inspector


class EngineOnLoad:
    """The engine the settings describe, built and loaded by `load()` on the worker's thread: torch and
    diffusers (seconds of imports) load there, beside the Discord connection, not before it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = None

    def load(self) -> None:
        quiet_model_libraries()
        from zbot.engine.engine import engine_for

        self.engine = engine_for(self.settings)
        self.engine.load()

    def render(self, spec, on_step):
        return self.engine.render(spec, on_step)

    def recover(self) -> None:
        if self.engine is not None:
            self.engine.recover()

    def __getattr__(self, name: str):  # warm_up_next and the engine's figures, once there is an engine
        engine = self.__dict__.get("engine")
        if engine is None:
            raise AttributeError(name)
        return getattr(engine, name)


def make_renderers(settings: Settings) -> list[Renderer]:
    if settings.executor == "ray":
        # One worker per GPU of a Ray cluster, each a Ray actor that builds its engine on its own node
        # (zbot.engine.engine.engine_for). Imported here only: the default install has no Ray.
        from zbot.engine.ray_workers import make_ray_renderers

        return make_ray_renderers(settings)
    return [EngineOnLoad(settings)]


class CheckerWithModel:
    """A checker loaded on the first worker's thread just before its model (`zbot run`: while the gateway
    connects), not before the start goes on. `score` waits for that load; after a failed one it fails,
    so nothing is ever passed unchecked."""

    def __init__(self, checker: Checker):
        self.checker = checker
        self.name = checker.name
        self.loaded = threading.Event()
        self.error: BaseException | None = None

    def load(self) -> None:
        try:
            quiet_model_libraries()
            self.checker.load()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.loaded.set()

    def score(self, image) -> float:
        self.loaded.wait()
        if self.error is not None:
            raise SafetyUnavailable(f"the safety checker did not load ({self.error})")
        return self.checker.score(image)

    def __getattr__(self, name: str):  # the loaded checker's device, say
        return getattr(self.__dict__["checker"], name)


class LoadsFirst:
    """A renderer whose `load()` runs `first()` before its own (a checker that must be ready first)."""

    def __init__(self, renderer: Renderer, first: Callable[[], None]):
        self.renderer = renderer
        self.first = first

    def load(self) -> None:
        self.first()
        self.renderer.load()

    def render(self, spec, on_step):
        return self.renderer.render(spec, on_step)

    def recover(self) -> None:
        self.renderer.recover()

    def __getattr__(self, name: str):
        return getattr(self.__dict__["renderer"], name)


FROM_SETTINGS: Any = object()  # open_core's checker: the one ZBOT_SAFETY* describe


async def load_checker(settings: Settings, checker: Checker | None = FROM_SETTINGS) -> Inspector:
    """The safety check, loaded (a download the first time, like the model's weights). With
    ZBOT_SAFETY=block a checker that can't load stops the start: images are never posted unchecked."""
    if checker is FROM_SETTINGS:
        checker = make_checker(settings)
    if checker is not None:
        try:
            await asyncio.to_thread(quiet_model_libraries)
            await asyncio.to_thread(checker.load)
        except SafetyUnavailable as exc:
            raise StartError(str(exc)) from None
    return Inspector(checker, settings.safety_threshold)


def check_before_start(settings: Settings) -> None:
    """What takes milliseconds to check, before anything slow: the model's folder (when ZBOT_MODEL is
    one; ModelNotFound), the safety checker's (when ZBOT_SAFETY_MODEL is one) and the database's folder
    (StartError), each in one line. With Ray the model folder is the workers' (often another host's), so
    only they can say it is missing."""
    if is_local(settings.model) and settings.executor != "ray":
        resolve_model(settings.model)
    if settings.safety != "off" and settings.safety_checker == "vit":
        try:
            local_checker_folder(settings.safety_model)
        except SafetyUnavailable as exc:
            raise StartError(str(exc)) from None
    database_folder(settings.database)


def database_folder(path: Path) -> Path:
    folder = path.expanduser().parent
    if not folder.is_dir():
        raise StartError(f"ZBOT_DATABASE={path}: the folder {folder} doesn't exist (or isn't a folder); "
                         "create it, or point ZBOT_DATABASE at a file in one that does")
    return folder


async def open_database(path: Path) -> Store:
    """The store, or StartError in one line when the path can't hold a database (no such folder, not
    a folder, no permission, a read-only disk)."""
    database_folder(path)
    try:
        return await Store.open(path)
    except (sqlite3.OperationalError, OSError) as exc:
        raise StartError(f"can't open the database {path} ({exc}); ZBOT_DATABASE must be a file zbot may "
                         "read and write, in a folder it may write to") from None


@asynccontextmanager
async def open_core(settings: Settings, renderers: list[Renderer] | None = None, *,
                    checker: Checker | None = FROM_SETTINGS, warm_up_idle: bool = True,
                    checker_with_model: bool = False) -> AsyncIterator[Core]:
    """Load the safety check, open the database, start the GPU worker (it loads the model in the
    background), and on exit finish the running job and leave queued ones in the database. `checker`:
    the settings' (default), None for none, or one of the caller's. `warm_up_idle`: the worker warms up
    the other sizes while idle (the bot); a one-shot command draws and leaves. `checker_with_model`: the
    checker loads on the first worker, before its model, instead of before this returns (`zbot run`
    connects to Discord meanwhile); a checker that fails then is the worker's load error."""
    made = not renderers
    if made:
        check_before_start(settings)
    if checker_with_model:
        chosen = make_checker(settings) if checker is FROM_SETTINGS else checker
        later = CheckerWithModel(chosen) if chosen is not None else None
        inspector = Inspector(later, settings.safety_threshold)
    else:
        later = None
        inspector = await load_checker(settings, checker)
    store = await open_database(settings.database)
    instance = None
    try:
        instance = await asyncio.to_thread(Instance, settings.database)
        images = await asyncio.to_thread(lambda: DrawnImages(drawn_dir(settings.database),
                                                             max_bytes=int(settings.keep_images_max_gb * 1e9)))
    except OSError as exc:
        await store.close()
        if instance is not None:
            instance.close()
        raise StartError(f"can't write beside the database {settings.database} ({exc.strerror or exc}); "
                         "ZBOT_DATABASE must be in a folder zbot may write to") from None
    lifecycle = Lifecycle(store, images, instance, keep_s=settings.keep_images_days * 86400)
    servers = ServerSettings(settings, store)
    await servers.load()
    if made:
        renderers = make_renderers(settings)
    if later is not None:  # the checker first (on a GPU: before the model's CUDA graphs are recorded)
        renderers = [LoadsFirst(renderers[0], later.load), *renderers[1:]]
    executor = Executor(renderers, encode_png, inspect=inspector, warm_up_idle=warm_up_idle)
    executor.start()
    metrics = Metrics(lambda: executor.depth)
    metrics.track_kept_images(lambda: images.bytes, images.max_bytes)
    service = Service(settings, store, executor, lifecycle, events=metrics, inspector=inspector, servers=servers)
    try:
        yield Core(settings, store, executor, service, metrics, lifecycle, inspector)
    finally:
        service.close()
        await executor.shutdown()  # a no-op if the front end already shut it down
        await service.drain(SETTLE_TIMEOUT_S)
        await store.close()
        instance.close()  # after the last write: the next start may adopt what is left
        if made:  # Ray workers are actors on the cluster: kill them, so that their GPUs are free again
            await asyncio.to_thread(lambda: [getattr(r, "close", lambda: None)() for r in renderers])
