"""A burst of 300 /draw from 100 users within 2 seconds, through the real discord.py client and the
fake Discord on loopback, while the tiny model renders on this machine's CPU.

    python bench/burst.py [--requests 300] [--users 100] [--within 2] [--size small]

Reports how fast every interaction was acknowledged (INTERACTION_CREATE sent -> first callback),
how many were admitted, refused (each with its reason) and posted, and whether the database rows
match exactly what happened. One JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.burstkit import burst  # noqa: E402

from zbot.engine.tiny import build_tiny_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--within", type=float, default=2.0, help="seconds over which the requests are sent")
    parser.add_argument("--size", default="small", help="small (64x64) or square (1024x1024)")
    parser.add_argument("--rate-limits", default="5/minute,100/day")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = build_tiny_model(folder / "tiny")
        figures = asyncio.run(burst(folder, model, requests=args.requests, users=args.users, within_s=args.within,
                                    size=args.size, rate_limits=args.rate_limits, max_pending_per_user=2))
    figures.update(bench="burst", size=args.size, cpus=os.cpu_count(), machine=platform.machine(),
                   python=platform.python_version())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
