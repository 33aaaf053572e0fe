"""Running the real bot (core + ZBot) against the fake Discord, for the end-to-end tests."""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from support.fake_discord import FakeDiscord, FakeMessage
from zbot.app import Core, open_core
from zbot.bot.client import ZBot
from zbot.config import Settings
from zbot.engine.engine import Engine, use_cpu_threads


def bot_settings(tmp_path: Path, tiny_model: Path, **changes) -> Settings:
    values = dict(database=tmp_path / "zbot.sqlite3", model=str(tiny_model), device="cpu",
                  sizes={"square": "1024x1024", "small": "64x64"}, rate_limits="100/minute",
                  max_pending_per_user=5, guild_ids=[], safety="off")
    values.update(changes)
    return Settings(_env_file=None, **values)


class GatedEngine(Engine):
    """The tiny engine, held at the start of each render until the test opens the gate; with
    `hold_after_first_step`, each render also stops after its first step (its progress shown) until the test
    lets it go on with `go_on.release()`: progress without the seconds-long renders of a large size."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.hold_after_first_step = False
        self.go_on = threading.Semaphore(0)

    def render(self, spec, on_step):
        self.started.set()
        self.gate.wait(30)

        def step(done: int, total: int) -> None:
            on_step(done, total)
            if done == 1 and self.hold_after_first_step:
                self.go_on.acquire(timeout=30)

        return super().render(spec, step)


@dataclass
class Running:
    fake: FakeDiscord
    core: Core
    bot: ZBot
    engine: GatedEngine

    async def settle(self) -> None:
        """Wait until every delivery in flight has posted and been recorded."""
        await self.bot.delivery.wait(30)
        await self.core.service.drain()


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, settings: Settings, checker=None) -> AsyncIterator[Running]:
    """The bot on the tiny model; `checker` is the safety checker (none by default: the tests that are
    about safety bring one whose verdict they control)."""
    use_cpu_threads()
    engine = GatedEngine(settings.model, device="cpu", styles=settings.styles)
    async with open_core(settings, [engine], checker=checker) as core:
        await core.executor.wait_ready()
        bot = ZBot(settings, core.service, guild_ready_timeout=0)
        async with fake.running(bot):
            yield Running(fake, core, bot, engine)
            await core.executor.shutdown(timeout=30)
            await bot.delivery.wait(30)


def image_of(message: FakeMessage) -> Image.Image:
    [attachment] = message.attachments
    return Image.open(io.BytesIO(attachment.data))


def seed_in(message: FakeMessage) -> int:
    return int(re.search(r"seed (\d+)", message.content)[1])


def posted_images(fake: FakeDiscord) -> list[FakeMessage]:
    """The bot's messages that carry an image and are still there."""
    return [m for m in fake.bot_messages if m.attachments and not m.deleted]


def finished(message: FakeMessage | None) -> bool:
    return message is not None and bool(message.attachments)


def image_controls(job_id: int, *, sizes: bool = True) -> list[str]:
    """The custom_ids under a single posted image: its buttons, row by row, then the menu of sizes."""
    buttons = [f"zbot:{action}:{job_id}" for action in ("reroll", "vary-subtle", "vary", "upscale", "edit", "zoom-2",
                                                         "zoom-15", "pan-left", "pan-right", "pan-up", "pan-down",
                                                         "delete", "report")]
    return buttons + ([f"zbot:size:{job_id}"] if sizes else [])


def grid_controls(job_id: int, count: int) -> list[str]:
    """The custom_ids under a grid: 1..count, V1..count, then Reroll, Delete, Report."""
    return [*(f"zbot:pick:{job_id}:{i}" for i in range(count)), *(f"zbot:vary:{job_id}:{i}" for i in range(count)),
            f"zbot:reroll:{job_id}", f"zbot:delete:{job_id}", f"zbot:report:{job_id}"]


def control(message, action: str) -> str:
    """The custom_id of a message's first control for `action` ("reroll", "delete", "pick"...)."""
    return next(cid for cid in message.custom_ids if cid.startswith(f"zbot:{action}:"))
