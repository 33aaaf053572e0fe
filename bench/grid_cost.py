"""What composing a grid costs, off the event loop: decoding the job's PNGs, scaling each to a tile,
numbering it, and encoding the grid (zbot.core.grid.compose, as the bot runs it through asyncio.to_thread).

    python bench/grid_cost.py [--repeat 10]

The images are a real photograph at 1024x1024, as Z-Image draws by default. One JSON line last.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.core.grid import compose  # noqa: E402
from zbot.core.imaging import encode_png  # noqa: E402

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "safe" / "astronaut.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    png = encode_png(Image.open(PHOTO).convert("RGB").resize((1024, 1024)))
    out: dict = {"bench": "grid_cost", "image": "1024x1024", "python": platform.python_version(),
                 "machine": platform.machine()}
    for count in (2, 3, 4):
        compose([png] * count)  # warm up
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            grid = compose([png] * count)
            times.append(time.perf_counter() - began)
        out[f"count_{count}"] = {"median_ms": round(1000 * statistics.median(times), 1),
                                 "grid_bytes": len(grid), "grid_size": list(Image.open(__import__("io").BytesIO(grid)).size)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
