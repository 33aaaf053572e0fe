"""Wiring: build the core once from the settings and hand it to whichever front end runs."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import torch

from .config import Settings
from .engine import Engine, resolve_device
from .executor import Executor, Renderer
from .imaging import encode_png
from .metrics import Metrics
from .service import Service
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    store: Store
    executor: Executor
    service: Service
    metrics: Metrics


def make_renderers(settings: Settings) -> list[Renderer]:
    if settings.executor == "ray":
        # One worker per GPU of a Ray cluster, each a Ray actor that builds its engine with this function
        # (executor "local") on its own node. Imported here only: the default install has no Ray.
        from .ray_workers import make_ray_renderers

        return make_ray_renderers(settings)
    if resolve_device(settings.device).type == "cpu":
        use_cpu_threads()
    return [Engine(settings.model, device=settings.device, dtype=settings.dtype, compile=settings.compile,
                   sizes=list(settings.size_table.values()),
                   quantize=settings.quantize, offload=settings.offload, compile_cache=settings.compile_cache)]


def use_cpu_threads() -> None:
    """On a CPU, leave one core to the event loop. With every core given to torch, its OpenMP workers
    spin at barriers while the loop thread holds a core, and a render slows down tens of times."""
    cores = os.cpu_count() or 2
    torch.set_num_threads(max(1, cores - 1))


@asynccontextmanager
async def open_core(settings: Settings, renderers: list[Renderer] | None = None) -> AsyncIterator[Core]:
    """Open the database, start the GPU worker (it loads the model in the background), and on exit
    finish the running job and leave queued ones in the database."""
    store = await Store.open(settings.database)
    made = not renderers
    if made:
        renderers = make_renderers(settings)
    executor = Executor(renderers, encode_png)
    executor.start()
    metrics = Metrics(lambda: executor.depth)
    service = Service(settings, store, executor, events=metrics)
    try:
        yield Core(settings, store, executor, service, metrics)
    finally:
        await executor.shutdown()
        await service.drain()
        await store.close()
        if made:  # Ray workers are actors on the cluster: kill them, so that their GPUs are free again
            await asyncio.to_thread(lambda: [getattr(r, "close", lambda: None)() for r in renderers])
