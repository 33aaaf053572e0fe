"""The image blocks' ahead-of-time code (zbot/engine/ahead.py) when things go wrong: an artifact that can't be
read, a save that fails, a key that must change with what the code depends on. (The working path, saved
by one start and loaded by the next, is tests/test_engine_start.py's.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.transformers.transformer_z_image import ZImageTransformerBlock

from zbot.engine import ahead
from zbot.engine.acceleration import RealRopeAttnProcessor, use_real_rope

pytestmark = pytest.mark.skipif(not ahead.supported(), reason="this torch can't compile ahead of time")


def image_blocks(count: int = 2) -> torch.nn.ModuleList:
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList(ZImageTransformerBlock(index, 32, 2, 2, 1e-5, True, modulation=True).eval()
                                 for index in range(count))
    for block in blocks:
        block.attention.set_processor(RealRopeAttnProcessor())
        ahead.install(block)
    return blocks


def block_inputs(tokens: int = 16, dim: int = 32, heads: int = 2) -> tuple:
    half = dim // heads // 2
    return (torch.randn(1, tokens, dim), None, torch.polar(torch.ones(1, tokens, half), torch.randn(1, tokens, half)),
            torch.randn(1, dim), None, None, None)


def test_a_corrupt_artifact_is_deleted_and_saved_anew_while_the_blocks_compile_just_in_time(tmp_path: Path):
    blocks = image_blocks()
    saved = ahead.AheadBlocks(tmp_path, "k1")
    saved.path.parent.mkdir(parents=True)
    saved.path.write_bytes(b"half a file, cut off by a full disk")
    saved.prefetch(torch.device("cpu"))  # fails on its thread; the failure surfaces in load()
    saved.attach(blocks)
    assert not saved.load(torch.device("cpu"))
    assert not saved.path.exists() and not saved.failed_marker.exists()
    assert saved.wanted  # this start's warm-up saves it again
    assert all(call.ahead is None for call in saved.calls)
    x = block_inputs()
    with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
        out = blocks[0](*x)  # served through the just-in-time path
    assert out.shape == x[0].shape and torch.isfinite(out).all()


class BrokenSavedCode:
    """Saved code whose guards admit the call but which fails when it runs (a driver that can't load
    its kernels, say): the failure injected where the real code would raise it."""

    def __init__(self):
        self.runs = 0

    def guard_check(self, *args, **kwargs) -> bool:
        return True

    def fn(self, *args, **kwargs):
        self.runs += 1
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")


def test_saved_code_that_fails_while_running_is_dropped_and_the_call_still_served(caplog):
    blocks = image_blocks(3)
    calls = ahead.calls(blocks)
    broken = BrokenSavedCode()
    saved = ahead.SavedCode(broken)  # as AheadBlocks.load shares a loaded artifact
    for call in calls:
        call.saved = saved
    x = block_inputs()
    with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
        eager = type(blocks[0]).forward(blocks[0], *x)
        first = blocks[0](*x)
        blocks[1](*x)
    assert torch.allclose(first, eager)  # the failing call itself was served, the just-in-time way
    assert broken.runs == 1 and all(call.ahead is None for call in calls)  # not tried again, on any block
    assert "ahead-of-time code failed" in caplog.text


class RefusingSavedCode(BrokenSavedCode):
    """Saved code whose guards admit no call (made for other shapes, say)."""

    def guard_check(self, *args, **kwargs) -> bool:
        return False


def test_calls_the_saved_code_refuses_are_served_counted_and_logged_once_per_start(caplog):
    blocks = image_blocks(3)
    calls = ahead.calls(blocks)
    refusing = RefusingSavedCode()
    saved = ahead.SavedCode(refusing)
    for call in calls:
        call.saved = saved
    x = block_inputs()
    with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
        outs = [block(*x) for block in blocks for _ in range(2)]
    assert refusing.runs == 0 and all(torch.isfinite(out).all() for out in outs)
    assert [call.misfits for call in calls] == [2, 2, 2]
    assert all(call.ahead is refusing for call in calls)  # kept: other calls may fit
    # one line for the start, not one per block: 32 image blocks would say the same thing 32 times
    assert caplog.text.count("doesn't fit a call") == 1


def test_a_folder_that_cant_be_written_costs_no_compile_and_leaves_no_marker(tmp_path: Path, caplog):
    blocks = image_blocks()
    (tmp_path / "ahead").write_text("a file where the folder should be")
    saved = ahead.AheadBlocks(tmp_path, "k3")
    saved.attach(blocks)
    saved.calls[0].example = (block_inputs(), {})
    saved.save()  # must not raise
    assert not saved.path.exists() and not saved.failed_marker.exists()
    assert saved.calls[0].example is None
    assert "could not save the image blocks' ahead-of-time code" in caplog.text


def test_a_save_that_fails_is_logged_marked_and_not_retried(tmp_path: Path, caplog):
    blocks = image_blocks()
    saved = ahead.AheadBlocks(tmp_path, "k2")
    saved.attach(blocks)
    assert saved.wanted and len(saved.calls) == 2
    saved.keep_next_call()
    good = block_inputs()
    with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
        blocks[0](*good)
    assert saved.calls[0].example is not None and not saved.calls[0].keep_next
    # A kept call whose arguments can't be traced (the wrong width for this block's weights): the
    # compile fails inside torch, as an unexpected model or library version would make it fail.
    saved.calls[0].example = (block_inputs(dim=48, heads=2), {})
    saved.save()  # must not raise: the bot goes on serving with the just-in-time code
    assert not saved.path.exists() and saved.failed_marker.exists() and not saved.wanted
    assert saved.calls[0].example is None  # the kept tensors are let go
    assert "could not compile the image blocks ahead of time" in caplog.text


def test_the_artifact_key_follows_the_numeric_mode():
    cpu = torch.device("cpu")
    keys = {ahead.artifact_key(cpu, torch.float32, "none"), ahead.artifact_key(cpu, torch.bfloat16, "none")}
    assert len(keys) == 2
    assert ahead.artifact_key(cpu, torch.float32, "none") == ahead.artifact_key(cpu, torch.float32, "none")


def test_the_attention_calls_our_processor_straight():
    """The saved code can't carry diffusers' signature inspection: the attention class is swapped for one
    that calls the processor straight, with the same result."""
    torch.manual_seed(1)
    block = ZImageTransformerBlock(0, 32, 2, 2, 1e-5, True, modulation=True).eval()
    x = block_inputs()
    with torch.inference_mode():
        use_real_rope(torch.nn.ModuleList([block]))  # diffusers' processor -> ours, class swapped
        assert type(block.attention).__name__ == "DirectAttention"
        swapped = block(*x)
        block.attention.__class__ = type(block.attention).__mro__[1]  # diffusers' Attention again
        assert torch.allclose(block(*x), swapped)
