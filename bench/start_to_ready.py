"""How soon a restarted `zbot run` answers: process start -> the gateway's READY sent -> a /draw answered
("warming up" or a queue place) -> its image posted (the tiny model, so the model's part is small).

Each start is a fresh `python -m zbot.cli.main run` against the fake Discord of tests/ (REST + gateway on
127.0.0.1), with the tiny model and a fresh database; times are the median of --runs starts.

    python bench/start_to_ready.py [--runs 5] [--zbot-path DIR] [--label NAME] [--out FILE.json]

--zbot-path puts another checkout's zbot first on PYTHONPATH (the code before a change, say).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.botkit import finished  # noqa: E402
from support.fake_discord import FakeDiscord  # noqa: E402


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{platform.node()}: {os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


async def one_start(model: Path, folder: Path, zbot_path: str | None) -> dict[str, float]:
    async with FakeDiscord() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZBOT_")}
        env.update(ZBOT_DISCORD_TOKEN=fake.token, ZBOT_DISCORD_API_URL=fake.api_url,
                   ZBOT_DISCORD_GATEWAY_URL=fake.gateway_url, ZBOT_MODEL=str(model),
                   ZBOT_DATABASE=str(folder / "zbot.sqlite3"), ZBOT_SIZES='{"small": "64x64"}',
                   ZBOT_GUILD_IDS=str(fake.guild_id), ZBOT_HTTP_PORT="0", ZBOT_SAFETY="off", PYTHONUNBUFFERED="1")
        if zbot_path:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [zbot_path, env.get("PYTHONPATH")]))
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "zbot.cli.main", "run", env=env, cwd=folder,
                                                       stdout=asyncio.subprocess.DEVNULL,
                                                       stderr=asyncio.subprocess.DEVNULL)
        try:
            await fake.wait_connected(timeout=120)
            ready = time.perf_counter() - began
            ix = await fake.slash("draw", {"prompt": "a fox at start"})
            await ix.wait_original(timeout=120)
            answered = time.perf_counter() - began
            await ix.wait_original(finished, timeout=300)
            drawn = time.perf_counter() - began
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 60)
    return {"ready_s": round(ready, 3), "answered_s": round(answered, 3), "first_image_s": round(drawn, 3)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--zbot-path", help="a checkout whose zbot to start instead of this one's")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny"
        subprocess.run([sys.executable, "-m", "zbot.cli.main", "tiny-model", str(model)], check=True,
                       capture_output=True)
        await one_start(model, Path(tempfile.mkdtemp(dir=tmp)), args.zbot_path)  # warm-up: the disk cache
        runs = [await one_start(model, Path(tempfile.mkdtemp(dir=tmp)), args.zbot_path) for _ in range(args.runs)]
    figures = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
    result = {"machine": machine(), "label": args.label, "runs": runs, "median": figures,
              "python": platform.python_version()}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
