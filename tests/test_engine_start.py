"""The engine's start on the CPU with the tiny model, compiled for real: ready after the first size, the
rest warmed up step by step, a size not yet warmed served without compiling, and a second start (a
restart) that takes every graph from the compile cache. Each start is a process of its own, as the
bot's are: torch.compile's in-memory state would otherwise carry over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PROBE = Path(__file__).parent / "support" / "engine_start_probe.py"


def start(model: Path, cache: Path) -> dict:
    # Inductor's C++ without SIMD: what this test checks (graphs, guards, caches, the code saved ahead of
    # time) doesn't depend on it, and the vectorised kernels took a third of its time to compile.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_VEC_ISA_OK": "0"}
    done = subprocess.run([sys.executable, str(PROBE), str(model), str(cache)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="Inductor on the CPU needs a C++ compiler")
def test_a_compiled_engine_serves_after_its_first_size_and_a_restart_compiles_nothing(
        tiny_model: Path, tmp_path: Path):
    cache = tmp_path / "compile-cache"
    cold = start(tiny_model, cache)
    assert cold["warmed_after_load"] == [[64, 64]]
    # Only the transformer's image blocks before the first image: one graph (dynamic sequence length).
    assert cold["graphs_after_load"] == 1
    assert cold["pending_after_load"] == ["the VAE decoder compiled", "the caption refiner compiled",
                                          "the text encoder at each length", "64x64 at the longest caption",
                                          "upscale to 128x128", "inpaint at 64x64", "pan to 96x64",
                                          "pan to 64x96", "the image blocks saved ahead of time"]
    assert cold["unwarmed_size"] == [128, 128] and cold["unwarmed_graphs_built"] == 0
    # The VAE decoder's, the caption refiner's and the image block's compiled ahead of time, nothing more:
    # one decoder graph serves every size, image to image and inpainting (its latents in the usual layout).
    assert cold["warm_up_graphs_built"] == 3
    # One configured size keeps this test fast; the plan with several sizes is checked without compiling
    # (tests/test_inpaint.py::test_the_warm_up_plan_covers_every_configured_size_then_upscales_then_painting).
    assert cold["warmed_in_the_end"] == [[64, 64], [64, 96], [96, 64], [128, 128]]
    assert cold["serving_graphs_built"] == 0 and cold["recompiles"] == 0
    assert cold["fx_graph_cache_misses"] > 0
    assert cold["trace_restarts"] == 0  # each graph traced once (floats specialised from the start)
    assert not cold["ahead_loaded"] and cold["ahead_saved"]  # the last warm-up step saved the image blocks


    warm = start(tiny_model, cache)  # a restart on the same machine and software
    assert warm["warmed_after_load"] == [[64, 64]] and warm["unwarmed_graphs_built"] == 0
    # The image blocks run the code saved ahead of time: nothing traced before the first image, and
    # every call (each size, caption length, image to image) fit its guards.
    assert warm["ahead_loaded"] and warm["graphs_after_load"] == 0 and warm["ahead_misfits"] == 0
    assert warm["misfit_served"]  # a call its guards refuse runs the just-in-time way
    assert "the image blocks saved ahead of time" not in warm["pending_after_load"]
    # The rest (VAE decoder, caption refiner) from the compile cache: compiled once, by the cold start.
    assert warm["fx_graph_cache_misses"] == 0 and 0 < warm["fx_graph_cache_hits"] < cold["fx_graph_cache_misses"]
    assert warm["serving_graphs_built"] == 0 and warm["recompiles"] == 0
    assert warm["timings"]["first_warmup_s"] < cold["timings"]["first_warmup_s"]
    # The same picture from the saved code as from the code compiled in the cold start.
    cold_pixels = np.asarray(Image.open(cold["first_image"]), dtype=np.int16)
    warm_pixels = np.asarray(Image.open(warm["first_image"]), dtype=np.int16)
    assert np.abs(cold_pixels - warm_pixels).max() <= 1
