"""Wiring: build the core once from the settings and hand it to whichever front end runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .config import Settings
from .drawn import DrawnImages, drawn_dir
from .engine import engine_for
from .executor import Executor, Renderer
from .imaging import encode_png
from .instance import Instance
from .lifecycle import Lifecycle
from .metrics import Metrics
from .service import Service
from .store import Store

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


def make_renderers(settings: Settings) -> list[Renderer]:
    if settings.executor == "ray":
        # One worker per GPU of a Ray cluster, each a Ray actor that builds its engine on its own node
        # (zbot.engine.engine_for). Imported here only: the default install has no Ray.
        from .ray_workers import make_ray_renderers

        return make_ray_renderers(settings)
    return [engine_for(settings)]


@asynccontextmanager
async def open_core(settings: Settings, renderers: list[Renderer] | None = None) -> AsyncIterator[Core]:
    """Open the database, start the GPU worker (it loads the model in the background), and on exit
    finish the running job and leave queued ones in the database."""
    store = await Store.open(settings.database)
    instance = None
    try:
        instance = await asyncio.to_thread(Instance, settings.database)
        images = await asyncio.to_thread(DrawnImages, drawn_dir(settings.database))
    except OSError as exc:
        await store.close()
        if instance is not None:
            instance.close()
        raise StartError(f"can't write beside the database {settings.database} ({exc.strerror or exc}); "
                         "ZBOT_DATABASE must be in a folder zbot may write to") from None
    lifecycle = Lifecycle(store, images, instance)
    made = not renderers
    if made:
        renderers = make_renderers(settings)
    executor = Executor(renderers, encode_png)
    executor.start()
    metrics = Metrics(lambda: executor.depth)
    service = Service(settings, store, executor, lifecycle, events=metrics)
    try:
        yield Core(settings, store, executor, service, metrics, lifecycle)
    finally:
        service.close()
        await executor.shutdown()  # a no-op if the front end already shut it down
        await service.drain(SETTLE_TIMEOUT_S)
        await store.close()
        instance.close()  # after the last write: the next start may adopt what is left
        if made:  # Ray workers are actors on the cluster: kill them, so that their GPUs are free again
            await asyncio.to_thread(lambda: [getattr(r, "close", lambda: None)() for r in renderers])
