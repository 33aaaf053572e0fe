"""The tiny Z-Image pipeline builds offline, loads back, and renders deterministically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from diffusers import ZImagePipeline
from PIL import Image

from zbot.engine.tiny import build_tiny_model


@pytest.fixture
def fixed_threads() -> Iterator[None]:
    # Bytes are only reproducible at a fixed thread count (1 vs 2 threads can differ by 1/255).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _render(pipe: ZImagePipeline, seed: int) -> Image.Image:
    return pipe(
        prompt="a red fox",
        height=64,
        width=64,
        num_inference_steps=8,
        guidance_scale=0.0,  # Turbo runs without CFG
        generator=torch.Generator("cpu").manual_seed(seed),
    ).images[0]


def test_tiny_model_renders_deterministically(tmp_path: Path, fixed_threads: None) -> None:
    rng_before = torch.get_rng_state()
    path = build_tiny_model(tmp_path / "tiny")
    assert torch.equal(rng_before, torch.get_rng_state()), "building must not touch the caller's RNG"
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 10 * 2**20

    pipe = ZImagePipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    first, again, other = _render(pipe, 1), _render(pipe, 1), _render(pipe, 2)

    assert first.size == (64, 64) and first.mode == "RGB"
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    assert len(set(first.getdata())) > 100, "image should not be flat"
