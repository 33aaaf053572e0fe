"""`zbot run` started the way a user starts it: a subprocess, configured by the environment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from support.botkit import finished
from support.fake_discord import FakeDiscord


def bot_env(fake: FakeDiscord, tmp_path: Path, tiny_model: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZBOT_")}
    env.update(ZBOT_DISCORD_TOKEN=fake.token, ZBOT_DISCORD_API_URL=fake.api_url,
               ZBOT_DISCORD_GATEWAY_URL=fake.gateway_url, ZBOT_MODEL=str(tiny_model),
               ZBOT_DATABASE=str(tmp_path / "zbot.sqlite3"), ZBOT_SIZES='{"small": "64x64"}',
               ZBOT_GUILD_IDS=str(fake.guild_id), ZBOT_HTTP_PORT="0", PYTHONUNBUFFERED="1", ZBOT_SAFETY="off")
    env.update(extra)
    return env


async def start(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "zbot.cli.main", "run", env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def stop(process: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, output.decode()


@pytest.mark.parametrize("token, message", [("", "ZBOT_DISCORD_TOKEN is not set"),
                                            ("wrong-token", "Discord rejected ZBOT_DISCORD_TOKEN")])
async def test_a_missing_or_rejected_token_is_one_line_and_exit_1(tmp_path, tiny_model, token, message):
    async with FakeDiscord() as fake:
        process = await start(bot_env(fake, tmp_path, tiny_model, ZBOT_DISCORD_TOKEN=token), tmp_path)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 1
    assert text.strip().splitlines()[-1].startswith(f"zbot: {message}")
    assert "Traceback" not in text and (not token or token not in text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_zbot_run_syncs_draws_serves_health_metrics_and_images_logs_json_and_stops_on_sigterm(
        tmp_path, tiny_model):
    port, key = free_port(), "team-key-0123456789abcdef"
    async with FakeDiscord() as fake:
        env = bot_env(fake, tmp_path, tiny_model, ZBOT_HTTP_PORT=str(port), ZBOT_API_KEYS=key,
                      ZBOT_LOG_FORMAT="json")
        process = await start(env, tmp_path)
        base = f"http://127.0.0.1:{port}"
        try:
            # Discord first: the commands synced, the gateway connected, /draw answered with an image.
            await fake.wait_for(lambda f: f.guild_commands.get(f.guild_id), timeout=60)
            await fake.wait_connected(timeout=30)
            ix = await fake.slash("draw", {"prompt": "a fox in a subprocess"})
            message = await ix.wait_original(finished, timeout=60)
            async with aiohttp.ClientSession() as http:
                for _ in range(600):  # /healthz turns 200 once the model is loaded and the gateway connected
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"{base}/healthz") as r:
                            if r.status == 200:
                                break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("never healthy")
                async with http.post(f"{base}/v1/images", json={"prompt": "a fox", "seed": 3},
                                     headers={"Authorization": f"Bearer {key}"}) as r:
                    assert r.status == 200 and r.headers["X-Zbot-Seed"] == "3"
                    assert (await r.read()).startswith(b"\x89PNG")
                async with http.get(f"{base}/metrics") as r:
                    assert 'zbot_jobs_total{outcome="done"} 2.0' in await r.text()  # Discord's and this one
        finally:
            code, output = await stop(process)  # SIGTERM
    assert "seed " in message.content and message.attachments[0].filename.endswith(".png")
    assert code == 0, output
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(e.get("source") == "http" and e.get("outcome") == "done" for e in entries), output
    assert key not in output and fake.token not in output


async def test_with_ray_workers_sigterm_still_stops_cleanly_with_status_0(tmp_path, tiny_model):
    pytest.importorskip("ray")
    async with FakeDiscord() as fake:
        env = bot_env(fake, tmp_path, tiny_model, ZBOT_EXECUTOR="ray", ZBOT_WORKERS="1", ZBOT_DEVICE="cpu",
                      RAY_ADDRESS="", RAY_USAGE_STATS_ENABLED="0")
        process = await start(env, tmp_path)
        try:
            await fake.wait_for(lambda f: f.guild_commands.get(f.guild_id), timeout=120)
            await fake.wait_connected(timeout=60)
            message = await (await fake.slash("draw", {"prompt": "a fox on a ray worker"})).wait_original(
                finished, timeout=120)
        finally:
            code, output = await stop(process, timeout=90)
    assert "seed " in message.content
    assert code == 0, output[-3000:]
    assert "stopping: finishing the running job" in output


async def test_a_database_folder_that_is_missing_or_a_file_and_a_busy_port_are_one_line_each(tmp_path, tiny_model):
    (tmp_path / "a-file").write_text("not a folder")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    cases = [
        (dict(ZBOT_DATABASE=str(tmp_path / "no" / "such" / "zbot.sqlite3")), "the folder"),
        (dict(ZBOT_DATABASE=str(tmp_path / "a-file" / "zbot.sqlite3")), "the folder"),
        (dict(ZBOT_HTTP_PORT=str(port)), f"could not listen on 127.0.0.1:{port}"),
    ]
    try:
        async with FakeDiscord() as fake:
            for extra, message in cases:
                process = await start(bot_env(fake, tmp_path, tiny_model, **extra), tmp_path)
                output, _ = await asyncio.wait_for(process.communicate(), 60)
                lines = [line for line in output.decode().splitlines() if line.startswith("zbot:")]
                assert process.returncode == 1, output.decode()
                assert len(lines) == 1 and message in lines[0], output.decode()
                assert "Traceback" not in output.decode()
    finally:
        busy.close()
