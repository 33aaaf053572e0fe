"""Wiring: build the core once from the settings and hand it to whichever front end runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .config import Settings
from .engine import Engine
from .executor import Executor, Renderer
from .imaging import encode_png
from .service import Service
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    store: Store
    executor: Executor
    service: Service


def make_renderers(settings: Settings) -> list[Renderer]:
    return [Engine(settings.model, device=settings.device, dtype=settings.dtype, compile=settings.compile,
                   quantize=settings.quantize, offload=settings.offload, compile_cache=settings.compile_cache)]


@asynccontextmanager
async def open_core(settings: Settings, renderers: list[Renderer] | None = None) -> AsyncIterator[Core]:
    """Open the database, start the GPU worker (it loads the model in the background), and on exit
    finish the running job and leave queued ones in the database."""
    store = await Store.open(settings.database)
    executor = Executor(renderers or make_renderers(settings), encode_png)
    executor.start()
    service = Service(settings, store, executor)
    try:
        yield Core(settings, store, executor, service)
    finally:
        await executor.shutdown()
        await service.drain()
        await store.close()
