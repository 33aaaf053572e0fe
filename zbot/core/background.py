"""Tasks started and not awaited: kept referenced until they finish (asyncio keeps only weak
references), and their failures logged instead of vanishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self, what: str, expected: tuple[type[BaseException], ...] = ()):
        self.what = what
        self.expected = expected  # failures that are part of the job's story, already handled elsewhere
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, self.expected):
            log.error("%s failed", self.what, exc_info=error)

    def cancel(self) -> None:
        """Stop every task still running (at shutdown, after `wait` gave them their time)."""
        for task in list(self.tasks):
            task.cancel()

    async def wait(self, timeout: float | None = None) -> None:
        """Until every task (including ones started meanwhile) is done, or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.tasks:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            await asyncio.wait(list(self.tasks), timeout=left)
