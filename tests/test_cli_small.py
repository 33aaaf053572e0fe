"""Issue 26's small command-line items: `zbot --version`, and other libraries' noise (ModelScope's retry
warnings, transformers' shard-writing bar) kept out of zbot's output. (Where `zbot draw` left the database
and images when ZBOT_DATABASE is not set: tests/test_cli.py, in its draws.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_cli import zbot

from zbot import __version__


def test_version_is_printed_without_loading_anything(tmp_path: Path):
    done = zbot("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"zbot {__version__}", done.stderr


def test_tiny_model_writes_a_pipeline_and_prints_zbots_line_only(tmp_path: Path):
    done = zbot("tiny-model", "model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "model" / "model_index.json").is_file()
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
