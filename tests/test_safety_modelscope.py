"""The safety checker from ModelScope, for hosts that can't reach Hugging Face (mainland China): named
with `modelscope:ORG/NAME`, or the default's ModelScope copy when Hugging Face fails. Both hubs are
faked: Hugging Face unreachable, ModelScope's cache empty until its download "fetches" the tiny checker."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from zbot.engine.safety import SafetyUnavailable, ViTChecker, resolve_checker_model


class Unreachable(OSError):
    """What a blocked connection gives huggingface_hub (a requests ConnectionError is an OSError too)."""


@pytest.fixture
def hubs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_checker: Path) -> list[tuple]:
    calls: list[tuple] = []

    def hugging_face(model, local_files_only=False, **kwargs):
        calls.append(("hf", model, local_files_only))
        raise Unreachable("huggingface.co: connection timed out")

    def modelscope(model, local_files_only=False, allow_patterns=None, **kwargs):
        calls.append(("modelscope", model, local_files_only))
        folder = tmp_path / "modelscope" / model
        if local_files_only and not folder.exists():
            raise ValueError("Cannot find the requested files in the cached path")
        if not folder.exists():
            shutil.copytree(tiny_checker, folder)
        return str(folder)

    monkeypatch.setattr(importlib.import_module("huggingface_hub"), "snapshot_download", hugging_face)
    monkeypatch.setattr(importlib.import_module("modelscope.hub.snapshot_download"), "snapshot_download", modelscope)
    return calls


def test_a_modelscope_id_is_fetched_from_modelscope_once_then_from_its_cache(hubs):
    path = resolve_checker_model("modelscope:AI-ModelScope/nsfw_image_detection")
    assert path.name == "nsfw_image_detection" and (path / "config.json").is_file()
    assert hubs == [("modelscope", "AI-ModelScope/nsfw_image_detection", True),
                    ("modelscope", "AI-ModelScope/nsfw_image_detection", False)]  # Hugging Face never asked
    hubs.clear()
    checker = ViTChecker("modelscope:AI-ModelScope/nsfw_image_detection", device="cpu")
    checker.load()  # a restart: from the cache, no download
    assert hubs == [("modelscope", "AI-ModelScope/nsfw_image_detection", True)]
    assert checker.flagged_labels


def test_the_default_comes_from_its_modelscope_copy_when_hugging_face_is_unreachable(hubs, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    path = resolve_checker_model("Falconsai/nsfw_image_detection")
    assert (path / "config.json").is_file()
    assert [call[:2] for call in hubs] == [("hf", "Falconsai/nsfw_image_detection"),
                                           ("modelscope", "AI-ModelScope/nsfw_image_detection"),
                                           ("hf", "Falconsai/nsfw_image_detection"),
                                           ("modelscope", "AI-ModelScope/nsfw_image_detection"),
                                           ("modelscope", "AI-ModelScope/nsfw_image_detection")]


def test_offline_nothing_is_fetched_and_the_line_names_the_modelscope_way(hubs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SafetyUnavailable, match="ZBOT_SAFETY_MODEL=modelscope:ORG/NAME"):
        resolve_checker_model("Falconsai/nsfw_image_detection")
    assert ("modelscope", "AI-ModelScope/nsfw_image_detection", False) not in hubs  # no download tried
