"""Issue 28 on the command line: `zbot draw PROMPT --from IMAGE --zoom-out 2` and `--pan right` reframe the
picture itself (on the 16-pixel grid) and paint the new part; each is one line when misused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from test_cli import zbot


def test_zoom_out_and_pan_an_image_from_a_file(tmp_path: Path, tiny_model: Path):
    cells = np.random.default_rng(2).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    start = Image.fromarray(cells).resize((100, 70), Image.Resampling.BICUBIC)
    start.save(tmp_path / "start.png")
    env = dict(ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64", "wide": "96x64"}', ZBOT_SAFETY="off",
               ZBOT_STEPS="4")
    zoomed = zbot("draw", "a harbour", "--from", "start.png", "--zoom-out", "2", "--out", "zoomed.png",
                  cwd=tmp_path, **env)
    assert zoomed.returncode == 0, zoomed.stderr
    panned = zbot("draw", "a harbour", "--from", "start.png", "--pan", "right", "--out", "panned.png",
                  cwd=tmp_path, **env)
    assert panned.returncode == 0, panned.stderr
    fitted = np.asarray(start.resize((96, 64), Image.Resampling.LANCZOS), float)
    assert Image.open(tmp_path / "zoomed.png").size == (96, 64) and "96x64" in zoomed.stdout
    wide = np.asarray(Image.open(tmp_path / "panned.png").convert("RGB"), float)
    assert wide.shape[:2] == (64, 144) and np.array_equal(wide[:, :80], fitted[:, :80])  # the left part kept
    both = zbot("draw", "x", "--from", "start.png", "--zoom-out", "2", "--pan", "up", cwd=tmp_path, **env)
    assert both.returncode == 1 and "choose one of --zoom-out and --pan" in both.stderr
    alone = zbot("draw", "x", "--pan", "up", cwd=tmp_path, **env)
    assert alone.returncode == 1 and "--zoom-out and --pan go with --from IMAGE" in alone.stderr
