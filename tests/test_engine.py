import hashlib
import socket
import time
from pathlib import Path

import pytest
import torch

from zbot.core.imaging import encode_png
from zbot.core.jobs import RenderSpec
from zbot.engine.engine import Engine
from zbot.engine.model_files import ModelNotFound, resolve_model, snapshot_is_complete


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Engine:
    torch.set_num_threads(2)  # same bytes for the same seed needs a fixed thread count
    engine = Engine(str(tiny_model), device="cpu")
    engine.load()
    return engine


def render(engine: Engine, seed: int, size: int = 1024, steps: int = 2) -> bytes:
    steps_seen = []
    image = engine.render(RenderSpec(1, "a red fox in the snow", seed, size, size, steps),
                          lambda done, total: steps_seen.append((done, total)))
    assert steps_seen == [(i, steps) for i in range(1, steps + 1)]
    assert image.size == (size, size)
    return encode_png(image)


def test_a_1024_render_is_byte_identical_for_a_seed_and_differs_for_another(engine: Engine):
    # Two steps: every step after the first runs the same code (the size is the point; 8 steps took 9 s).
    first, again, other = render(engine, 1234), render(engine, 1234), render(engine, 1235)
    assert first.startswith(b"\x89PNG")
    assert hashlib.sha256(first).digest() == hashlib.sha256(again).digest()
    assert first != other


def test_cjk_and_long_prompts_render(engine: Engine):
    for prompt in ["一只红狐狸在雪地里", "a fox " * 160]:
        image = engine.render(RenderSpec(1, prompt, 3, 32, 32, 2), lambda *_: None)
        assert image.size == (32, 32)


def test_a_cached_modelscope_snapshot_loads_without_the_network(tiny_model: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    snapshot = tmp_path / "models" / "Tongyi-MAI--Z-Image-Turbo" / "snapshots" / "master"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(tiny_model, target_is_directory=True)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    started = time.perf_counter()
    assert resolve_model("Tongyi-MAI/Z-Image-Turbo").resolve() == tiny_model.resolve()
    assert time.perf_counter() - started < 5


def test_an_incomplete_folder_is_refused_with_a_reason(tiny_model: Path, tmp_path: Path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model_index.json").write_text((tiny_model / "model_index.json").read_text())
    assert snapshot_is_complete(tiny_model) and not snapshot_is_complete(partial)
    with pytest.raises(ModelNotFound, match="not a complete"):
        resolve_model(str(partial))
