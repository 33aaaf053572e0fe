"""Issue 26's small command-line items: `zbot --version`, where `zbot draw` left the database and images
when ZBOT_DATABASE is not set, and other libraries' noise (ModelScope's retry warnings, transformers'
shard-writing bar) kept out of zbot's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_cli import zbot

from zbot import __version__


def test_version_is_printed_without_loading_anything(tmp_path: Path):
    done = zbot("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"zbot {__version__}", done.stderr


def test_draw_says_where_the_database_and_images_went_when_zbot_database_is_not_set(tiny_model: Path, tmp_path: Path):
    env = dict(ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64"}', ZBOT_SAFETY="off")
    done = zbot("draw", "a red fox", "--seed", "3", "--steps", "2", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip().splitlines()[-1]
    assert said == (f"history in {tmp_path.resolve() / 'zbot.sqlite3'} and images kept for variations in "
                    f"{tmp_path.resolve() / 'zbot.sqlite3-drawn'}/ (set ZBOT_DATABASE to put them elsewhere)")
    chosen = zbot("draw", "a red fox", "--seed", "3", "--steps", "2", cwd=tmp_path, ZBOT_DATABASE="mine.sqlite3", **env)
    assert chosen.returncode == 0 and "history in" not in chosen.stdout, chosen.stderr


def test_tiny_model_prints_zbots_line_only(tmp_path: Path):
    done = zbot("tiny-model", "model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Writing model shards" not in done.stderr and "%|" not in done.stderr
    assert done.stdout.startswith("wrote a tiny Z-Image pipeline")


MODELSCOPE_OFFLINE = """
import logging
from zbot.logs import setup_logging
setup_logging("INFO", "text")  # as `zbot` does, before anything imports modelscope
from modelscope_hub.utils.logger import get_logger
hub = get_logger("legacy_api")
hub.warning("Repo Tongyi-MAI/Z-Image-Turbo: Root=/ page=1 listing failed (NetworkError), retry in 1s (1/4)")
hub.error("the listing failed for good")
logging.getLogger("modelscope").warning("a notice of the older package")
logging.getLogger("zbot.engine.model_files").info("downloading Tongyi-MAI/Z-Image-Turbo")
"""


def test_modelscopes_retry_warnings_are_not_shown_and_its_errors_are(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", MODELSCOPE_OFFLINE], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 3)[2:] for line in done.stderr.splitlines()] == [
        ["ERROR", "modelscope_hub.legacy_api: the listing failed for good"],  # in zbot's format, through its handler
        ["INFO", "zbot.engine.model_files: downloading Tongyi-MAI/Z-Image-Turbo"]]
