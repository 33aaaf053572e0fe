"""The command line as a user runs it: a subprocess, its output and exit status."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def zbot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZBOT_")}
    return subprocess.run([sys.executable, "-m", "zbot.cli.main", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_draw_writes_the_image_and_prints_seed_file_and_time(tiny_model: Path, tiny_checker: Path, tmp_path: Path):
    done = zbot("draw", "a red fox", "--seed", "7", "--size", "wide", "--out", "fox.png", cwd=tmp_path,
                ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64", "wide": "96x64"}',
                ZBOT_SAFETY_MODEL=str(tiny_checker), ZBOT_SAFETY_THRESHOLD="1")
    assert done.returncode == 0, done.stderr
    assert "seed 7" in done.stdout and "fox.png" in done.stdout and " s" in done.stdout
    assert (tmp_path / "fox.png").read_bytes().startswith(b"\x89PNG")
    # ZBOT_DATABASE not set: the last line says where the history and the kept images went
    assert done.stdout.strip().splitlines()[-1] == (
        f"history in {tmp_path.resolve() / 'zbot.sqlite3'} and images kept for variations in "
        f"{tmp_path.resolve() / 'zbot.sqlite3-drawn'}/ (set ZBOT_DATABASE to put them elsewhere)")

    stats = zbot("stats", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "images drawn" in stats.stdout and "per day" in stats.stdout


def test_draw_from_an_image_file_redraws_it_at_its_size_and_the_strength(tiny_model: Path, tmp_path: Path, zbot_here):
    from PIL import Image

    start = Image.new("RGB", (100, 70), (200, 40, 40))
    start.putpixel((1, 1), (0, 0, 0))
    start.save(tmp_path / "start.jpg")
    env = dict(ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64", "wide": "96x64"}', ZBOT_SAFETY="off",
               ZBOT_DATABASE="mine.sqlite3")
    # The draw in this process (the process itself: the test above); the refusals as a user meets them.
    code, out, err = zbot_here("draw", "a red fox", "--from", "start.jpg", "--strength", "0.5", "--seed", "3",
                               "--out", "fox.png", **env)
    assert code == 0, err
    assert "seed 3" in out and "96x64" in out  # its own size, in multiples of 16
    assert "history in" not in out and (tmp_path / "mine.sqlite3").is_file()  # ZBOT_DATABASE chosen
    assert Image.open(tmp_path / "fox.png").size == (96, 64)
    refused = zbot("draw", "x", "--from", "start.jpg", "--strength", "1.5", cwd=tmp_path, **env)
    assert refused.returncode == 1 and "strength must be more than 0 and at most 1" in refused.stderr
    missing = zbot("draw", "x", "--from", "nope.png", cwd=tmp_path, **env)
    assert missing.returncode == 1 and "can't read nope.png" in missing.stderr


def test_settings_on_the_command_line_set_reset_and_list_each_servers_values(tmp_path: Path):
    env = dict(ZBOT_SAFETY="off")
    assert "no server has changed a setting" in zbot("settings", cwd=tmp_path, **env).stdout
    done = zbot("settings", "set", "123", "rate_limits", "2/minute", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "server 123: rate_limits = '2/minute' (was the default)" in done.stdout
    zbot("settings", "set", "456", "default_count", "2", cwd=tmp_path, **env)
    listed = zbot("settings", cwd=tmp_path, **env).stdout
    assert "server 123:\n  rate_limits = 2/minute" in listed and "server 456:\n  default_count = 2" in listed
    bad = zbot("settings", "set", "123", "rate_limits", "2/fortnight", cwd=tmp_path, **env)
    assert bad.returncode == 1 and "is not a rate like 5/minute" in bad.stderr
    reset = zbot("settings", "reset", "123", "rate_limits", cwd=tmp_path, **env)
    assert reset.returncode == 0 and "back to the default (was '2/minute')" in reset.stdout
    assert "server 123" not in zbot("settings", cwd=tmp_path, **env).stdout


@pytest.mark.parametrize("args, env, message", [
    (["draw", "x", "--seed", "-1"], {}, "seed must be a whole number"),
    (["draw", "   "], {}, "prompt is empty"),
    (["draw", "x", "--size", "giant"], {}, "Unknown size"),
    (["draw", "x", "--steps", "60"], {}, "between 1 and 50"),
    (["draw", "x"], {"ZBOT_STEPS": "0"}, "bad setting ZBOT_STEPS"),
    (["draw", "x"], {"ZBOT_RATE_LIMITS": "5/fortnight"}, "bad setting ZBOT_RATE_LIMITS"),
    (["draw", "x"], {"ZBOT_MODEL": "/no/such/dir", "ZBOT_SAFETY": "off"}, "no such directory"),
    (["stats"], {}, "no database"),
    (["stats"], {"ZBOT_DATABASE": "future.sqlite3"}, "made by a newer zbot"),
    (["draw", "x"], {"ZBOT_DTYPE": "fp16"}, "fp16 gives black images"),
    (["draw", "x"], {"ZBOT_SAFETY_MODEL": "/no/checker"}, "no image classifier there"),
    (["draw", "x"], {}, "the safety checker Falconsai/nsfw_image_detection is not downloaded"),
])
def test_errors_are_one_line_and_a_non_zero_exit(tmp_path: Path, args, env, message):
    import sqlite3

    sqlite3.connect(tmp_path / "future.sqlite3").execute("PRAGMA user_version = 99").connection.close()
    done = zbot(*args, cwd=tmp_path, **env)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("zbot: ") and message in last
    assert "Traceback" not in done.stderr
