"""How many jobs per second the core moves through admit -> queue -> run -> record, with a renderer
that does nothing: the bot's own overhead per image, to set against ~0.6-1.3 s of GPU time.

    python bench/core_throughput.py [--jobs 2000] [--users 50]

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from zbot.app import open_core
from zbot.config import Settings
from zbot.core.jobs import DrawRequest

STRIPE = Image.new("RGB", (2, 1), (0, 0, 0))
STRIPE.putpixel((1, 0), (255, 255, 255))  # two colours: a flat image would count as a broken render


class NullRenderer:
    def load(self) -> None:
        pass

    def render(self, spec, on_step):
        for step in range(spec.steps):
            on_step(step + 1, spec.steps)
        return STRIPE

    def recover(self) -> None:
        pass


async def run(jobs: int, users: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database=Path(folder) / "bench.sqlite3", rate_limits="1000000/minute",
                            max_pending_per_user=jobs, queue_size=jobs + 1, safety="off")
        async with open_core(settings, [NullRenderer()]) as core:
            core.executor._encode = lambda image: b"\x89PNG"  # measure the core, not an encoder
            await core.executor.wait_ready()
            started = time.perf_counter()
            tickets = [await core.service.submit(DrawRequest(user_id=i % users, prompt=f"prompt {i}"))
                       for i in range(jobs)]
            admitted = time.perf_counter()
            await asyncio.gather(*(t.result() for t in tickets))
            await core.service.drain()
            finished = time.perf_counter()
            done = (await core.store.query("SELECT count(*) FROM generations WHERE status = 'drawn'"))[0][0]
    assert done == jobs, f"only {done} of {jobs} recorded as done"
    return {
        "bench": "core_throughput",
        "jobs": jobs,
        "users": users,
        "admit_per_s": round(jobs / (admitted - started), 1),
        "end_to_end_jobs_per_s": round(jobs / (finished - started), 1),
        "ms_per_job": round(1000 * (finished - started) / jobs, 3),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args.jobs, args.users))
    print(json.dumps(result), file=sys.stdout)


if __name__ == "__main__":
    main()
