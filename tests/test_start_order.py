"""`zbot run`'s start order, in a real subprocess against the fake Discord: every bad setting and a missing
model folder are said before the token is even checked, a bad token before torch is imported, and the
gateway is connected and answering ("warming up") while torch and the model are still loading.

torch's import is held by a sitecustomize on PYTHONPATH: refused outright (a loud ImportError), or
held until the test opens a gate file. No timing is asserted."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from support.botkit import finished
from support.fake_discord import FakeDiscord
from test_run_process import bot_env, start, stop

HOLD_TORCH = """
import importlib.abc, os, sys, time

class HoldTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            gate = os.environ["TEST_TORCH_GATE"]
            if gate == "refuse":
                raise ImportError("torch was imported before the start was checked")
            while not os.path.exists(gate):
                time.sleep(0.05)
        return None

sys.meta_path.insert(0, HoldTorch())
"""


def holding_torch(tmp_path: Path, gate: str, env: dict[str, str]) -> dict[str, str]:
    folder = tmp_path / "hold-torch"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(HOLD_TORCH)
    pythonpath = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": pythonpath, "TEST_TORCH_GATE": gate}


async def run_to_exit(env: dict[str, str], cwd: Path) -> tuple[int, list[str], str]:
    process = await start(env, cwd)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    return process.returncode, [line for line in text.splitlines() if line.startswith("zbot:")], text


async def test_bad_settings_a_missing_model_folder_and_a_bad_token_are_said_before_anything_slow(tmp_path, tiny_model):
    async with FakeDiscord() as fake:
        # Every bad setting, one line each; then the model's and the checker's folders, before the token
        # is even sent.
        for extra, said in [
            (dict(ZBOT_STEPS="99", ZBOT_DTYPE="fp16"), ["bad setting ZBOT_DTYPE: fp16 gives black images",
                                                        "bad setting ZBOT_STEPS: Input should be less than"]),
            (dict(ZBOT_MODEL=str(tmp_path / "no-such-model")), [f"ZBOT_MODEL={tmp_path / 'no-such-model'}: no such"]),
            (dict(ZBOT_SAFETY="block", ZBOT_SAFETY_MODEL=str(tmp_path)),  # a folder, but no classifier in it
             [f"ZBOT_SAFETY_MODEL={tmp_path}: no image classifier there"]),
        ]:
            env = holding_torch(tmp_path, "refuse", bot_env(fake, tmp_path, tiny_model, **extra))
            code, lines, text = await run_to_exit(env, tmp_path)
            assert code == 1 and len(lines) == len(said), text
            assert all(line.startswith(f"zbot: {words}") for line, words in zip(sorted(lines), said)), text
            assert "Traceback" not in text
        assert not fake.request_log  # Discord was not asked anything
        # A bad token: one line, with torch never imported (the sitecustomize would have said so loudly).
        env = holding_torch(tmp_path, "refuse", bot_env(fake, tmp_path, tiny_model, ZBOT_DISCORD_TOKEN="wrong-token"))
        code, lines, text = await run_to_exit(env, tmp_path)
    assert code == 1 and lines == ["zbot: Discord rejected ZBOT_DISCORD_TOKEN (401 Unauthorized): copy the token "
                                   "again from the Developer Portal's Bot page"], text
    assert "Traceback" not in text and "torch was imported" not in text
    assert [(r.method, r.path) for r in fake.request_log] == [("GET", "/users/@me")]


async def test_the_gateway_is_ready_and_answering_while_torch_and_the_model_still_load(tmp_path, tiny_model):
    gate = tmp_path / "torch-may-load"
    async with FakeDiscord() as fake:
        process = await start(holding_torch(tmp_path, str(gate), bot_env(fake, tmp_path, tiny_model)), tmp_path)
        try:
            await fake.wait_connected(timeout=60)  # with torch's import held: nothing waits for it
            ix = await fake.slash("draw", {"prompt": "a fox before the model"})
            await ix.wait_original(lambda m: "Warming up" in m.content and "#1 in the queue" in m.content, timeout=30)
            assert not gate.exists() and process.returncode is None
            gate.touch()  # now torch, then the model, load; the queued request is drawn
            message = await ix.wait_original(finished, timeout=120)
        finally:
            code, output = await stop(process)
    assert "seed " in message.content, output
    assert code == 0, output[-3000:]
