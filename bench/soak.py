"""A soak: 1,000 renders (tiny model, 64x64) through the running bot against the fake Discord, a few
users at a time, as a busy server would send them over hours, compressed. Samples the process's
resident memory, open file descriptors, the SQLite files' size, the kept images' folder and the event
loop's lag at the start, middle and end (after a warm-up of 50 renders, so that caches and pools are
full before the first sample). Growth beyond noise is a leak.

    python bench/soak.py [--renders 1000] [--concurrency 8]

One JSON line last; bench/results/soak-cpu2.json holds a run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.botkit import bot_settings, finished, running_bot  # noqa: E402
from support.fake_discord import FakeDiscord  # noqa: E402

from zbot.engine.tiny import build_tiny_model  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def size_mib(*paths: Path) -> float:
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.exists():
            total += path.stat().st_size
    return total / 2**20


class LagProbe:
    """How late a 50 ms sleep wakes up, sampled continuously: the event loop's lag."""

    def __init__(self):
        self.samples: list[float] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.05)
            self.samples.append(time.perf_counter() - began - 0.05)

    def take(self) -> dict:
        samples, self.samples = sorted(self.samples), []
        if not samples:
            return {"lag_ms_p50": None, "lag_ms_p99": None}
        return {"lag_ms_p50": round(1000 * statistics.median(samples), 2),
                "lag_ms_p99": round(1000 * samples[min(len(samples) - 1, int(0.99 * len(samples)))], 2)}


def forget(fake: FakeDiscord, ix) -> None:
    """The fake Discord lives in this process and keeps every message, attachment, interaction and
    request it saw; drop a finished one's, so that what grows is the bot's, not the fake's records."""
    message = ix.original
    for attachment in message.attachments:
        fake.attachments.pop(attachment.id, None)
    fake.messages.pop(message.id, None)
    fake.interactions.remove(ix)
    fake._by_token.pop(ix.token, None)
    fake._by_id.pop(ix.id, None)
    fake.request_log.clear()


async def soak(folder: Path, model: Path, renders: int, concurrency: int, warmup: int) -> dict:
    async with FakeDiscord(watch_loggers=("discord", "zbot")) as fake:
        users = [fake.add_member(name=f"user{i}") for i in range(concurrency)]
        settings = bot_settings(folder, model, rate_limits="", max_pending_per_user=2, queue_size=1000)
        database = settings.database
        files = [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
        kept = database.with_name(database.name + "-drawn")
        async with running_bot(fake, settings) as run:
            probe = LagProbe()
            samples = []
            done = 0
            began = time.monotonic()

            def sample(label: str) -> None:
                gc.collect()
                samples.append({"at": label, "renders": done, "rss_mib": round(rss_mib(), 1), "fds": open_fds(),
                                "sqlite_mib": round(size_mib(*files), 2), "kept_images_mib": round(size_mib(kept), 2),
                                "elapsed_s": round(time.monotonic() - began, 1), **probe.take()})
                print(json.dumps(samples[-1]), flush=True)

            async def user_loop(user: int, count: int) -> None:
                nonlocal done
                for n in range(count):
                    ix = await fake.slash("draw", {"prompt": f"soak {user} {n}", "size": "small"}, user_id=user)
                    await ix.wait_original(finished, timeout=120)
                    forget(fake, ix)
                    done += 1
                    if done in marks:
                        sample(marks.pop(done))

            total = warmup + renders
            marks = {warmup: "start", warmup + renders // 2: "middle", total: "end"}
            per_user = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
            await asyncio.gather(*(user_loop(u, c) for u, c in zip(users, per_user, strict=True)))
            await run.settle()
            rows = await run.core.store.query("SELECT status, count(*) FROM generations GROUP BY status")
            probe.task.cancel()
            fake.check_errors()
    start, end = samples[0], samples[-1]
    return {
        "renders": renders, "warmup_renders": warmup, "concurrency": concurrency, "samples": samples,
        "rss_growth_mib": round(end["rss_mib"] - start["rss_mib"], 1),
        "fd_growth": end["fds"] - start["fds"],
        "sqlite_growth_mib_per_1000": round((end["sqlite_mib"] - start["sqlite_mib"]) * 1000 / renders, 2),
        "rows_by_status": {row[0]: row[1] for row in rows},
        "renders_per_s": round(renders / max(1e-9, end["elapsed_s"] - start["elapsed_s"]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = build_tiny_model(folder / "tiny")
        figures = asyncio.run(soak(folder, model, args.renders, args.concurrency, args.warmup))
    figures.update(bench="soak", cpus=os.cpu_count(), machine=platform.machine(), python=platform.python_version())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
