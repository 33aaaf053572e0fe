"""Issue 28 on the command line: `zbot draw PROMPT --from IMAGE --zoom-out 2` and `--pan right` reframe the
picture itself (on the 16-pixel grid) and paint the new part; each is one line when misused. The command runs
in this process (`zbot draw` as a process, its output and exit status: tests/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def test_zoom_out_and_pan_an_image_from_a_file(tmp_path: Path, tiny_model: Path, zbot_here):
    cells = np.random.default_rng(2).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    start = Image.fromarray(cells).resize((100, 70), Image.Resampling.BICUBIC)
    start.save(tmp_path / "start.png")
    env = dict(ZBOT_MODEL=str(tiny_model), ZBOT_SIZES='{"square": "64x64", "wide": "96x64"}', ZBOT_SAFETY="off",
               ZBOT_STEPS="4")
    code, zoomed, err = zbot_here("draw", "a harbour", "--from", "start.png", "--zoom-out", "2", "--out",
                                  "zoomed.png", **env)
    assert code == 0, err
    code, panned, err = zbot_here("draw", "a harbour", "--from", "start.png", "--pan", "right", "--out",
                                  "panned.png")
    assert code == 0, err
    fitted = np.asarray(start.resize((96, 64), Image.Resampling.LANCZOS), float)
    assert Image.open(tmp_path / "zoomed.png").size == (96, 64) and "96x64" in zoomed
    wide = np.asarray(Image.open(tmp_path / "panned.png").convert("RGB"), float)
    assert wide.shape[:2] == (64, 144) and np.array_equal(wide[:, :80], fitted[:, :80])  # the left part kept
    code, _, err = zbot_here("draw", "x", "--from", "start.png", "--zoom-out", "2", "--pan", "up")
    assert code == 1 and "choose one of --zoom-out and --pan" in err
    code, _, err = zbot_here("draw", "x", "--pan", "up")
    assert code == 1 and "--zoom-out and --pan go with --from IMAGE" in err
