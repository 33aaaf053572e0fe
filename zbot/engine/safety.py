"""Content safety: every rendered image is inspected before anyone sees it.

Z-Image-Turbo is uncensored and its pipeline has no safety checker. The executor inspects each image on
its encoder thread (off the event loop and off the GPU thread, so the GPU never waits for it): a broken
image (one flat colour) fails its job; otherwise a checker scores it for nudity, and a score at or above
the threshold flags it. What happens to a flagged image is the front end's policy (ZBOT_SAFETY): not
posted outside age-restricted channels, an error over HTTP.

Two checkers, chosen by ZBOT_SAFETY_CHECKER:
- vit (default): an image classifier for transformers, `Falconsai/nsfw_image_detection` (a ViT, Apache-2.0),
  fetched once from Hugging Face (or its ModelScope copy, where Hugging Face can't be reached) like the
  image model's weights, then loaded offline from the cache;
- nudenet: NudeNet's ONNX detector, which its wheel carries (offline from the start), but whose licence
  file is AGPL-3.0: an opt-in extra.
What they look for is nudity; violence and other harms are not checked.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from zbot.core.jobs import BrokenImage
from zbot.engine.model_files import is_local

log = logging.getLogger(__name__)

# Labels of an image classifier that mean "nothing to flag"; the others' probabilities add up to the score.
SAFE_LABELS = {"normal", "neutral", "safe", "sfw", "drawings", "drawing"}
# NudeNet's classes that flag an image (covered parts and faces don't).
NUDENET_EXPOSED = {"FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
                   "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"}


@dataclass(frozen=True)
class Verdict:
    score: float  # 0-1: how likely the image shows nudity
    flagged: bool  # score >= the threshold
    checker: str


class SafetyUnavailable(Exception):
    """The checker can't run as configured; the message, one line, says what to install, download or set."""


class Checker(Protocol):
    name: str

    def load(self) -> None: ...

    def score(self, image: Any) -> float:
        """How likely the PIL image shows nudity, 0-1."""


def is_flat(image: Any) -> bool:
    """One colour all over: what a render that went wrong (NaN latents, a dead decoder) looks like."""
    extrema = image.getextrema()
    if isinstance(extrema[0], int):  # one band
        extrema = (extrema,)
    return all(low == high for low, high in extrema)


class Inspector:
    """Called by the executor on each image, on its encoder thread: raises BrokenImage for a broken one,
    returns the checker's Verdict (None with no checker)."""

    def __init__(self, checker: Checker | None, threshold: float):
        self.checker = checker
        self.threshold = threshold

    def __call__(self, image: Any) -> Verdict | None:
        if is_flat(image):
            raise BrokenImage("the image came out as one flat colour")
        if self.checker is None:
            return None
        score = float(self.checker.score(image))
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):  # fail closed: never pass what wasn't judged
            raise ValueError(f"the {self.checker.name} checker gave the score {score}")
        return Verdict(round(score, 4), score >= self.threshold, self.checker.name)

    def png(self, png: bytes) -> Verdict | None:
        """Check an encoded image (a kept PNG, before it is shown again). Blocking: call it in a thread."""
        with Image.open(io.BytesIO(png)) as image:
            return self(image.convert("RGB"))

    @property
    def active(self) -> bool:
        return self.checker is not None


# -- the vit checker --------------------------------------------------------------------------------

MODELSCOPE = "modelscope:"  # ZBOT_SAFETY_MODEL=modelscope:ORG/NAME: a ModelScope id
# Where Hugging Face can't be reached (mainland China), the default checker's copy on ModelScope.
MODELSCOPE_COPIES = {"Falconsai/nsfw_image_detection": "AI-ModelScope/nsfw_image_detection"}
_WANTED = ["*.json", "*.safetensors"]


def resolve_checker_model(model: str) -> Path:
    """A local folder as it is; `modelscope:ORG/NAME` from ModelScope; otherwise a Hugging Face model id.
    Each from its cache when it is there (no network), else downloaded once (its config and safetensors
    weights only). The default id falls back to its ModelScope copy when Hugging Face can't be reached."""
    if model.startswith(MODELSCOPE):
        return _from_modelscope(model.removeprefix(MODELSCOPE), model)
    if (local := local_checker_folder(model)) is not None:
        return local
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, allow_patterns=_WANTED, local_files_only=True))
    except Exception:  # not in the cache yet
        pass
    copy = MODELSCOPE_COPIES.get(model)
    if copy is not None and (cached := _modelscope_cached(copy)) is not None:
        return cached
    log.info("downloading the safety checker %s from Hugging Face (about 350 MB, once)", model)
    try:
        return Path(snapshot_download(model, allow_patterns=_WANTED))
    except Exception as exc:
        # HF_HUB_OFFLINE: nothing is fetched from anywhere (tests, air-gapped hosts).
        if copy is None or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise SafetyUnavailable(
                f"the safety checker {model} is not downloaded and could not be fetched ({type(exc).__name__}); "
                "run `zbot download` where Hugging Face is reachable (or set HF_ENDPOINT to a mirror, or "
                f"ZBOT_SAFETY_MODEL={MODELSCOPE}ORG/NAME), point ZBOT_SAFETY_MODEL at a local copy, or set "
                "ZBOT_SAFETY=off") from None
        log.info("Hugging Face could not be reached (%s); fetching the same checker from ModelScope (%s)",
                 type(exc).__name__, copy)
        return _from_modelscope(copy, model)


def local_checker_folder(model: str) -> Path | None:
    """ZBOT_SAFETY_MODEL as a local folder (None for a model id); SafetyUnavailable when it holds no
    classifier. No imports, no network: checked before anything slow at start."""
    if model.startswith(MODELSCOPE):
        return None
    if not is_local(model):
        return None
    local = Path(model).expanduser()
    if not (local / "config.json").is_file():
        raise SafetyUnavailable(f"ZBOT_SAFETY_MODEL={model}: no image classifier there (config.json and "
                                "weights); run `zbot download`, or set ZBOT_SAFETY=off")
    return local


def _modelscope_cached(model_id: str) -> Path | None:
    from modelscope.hub.snapshot_download import snapshot_download

    try:
        path = Path(snapshot_download(model_id, allow_patterns=_WANTED, local_files_only=True))
    except Exception:  # not cached (modelscope raises its own errors, or ValueError)
        return None
    return path if (path / "config.json").is_file() else None


def _from_modelscope(model_id: str, setting: str) -> Path:
    from modelscope.hub.snapshot_download import snapshot_download

    if (cached := _modelscope_cached(model_id)) is not None:
        return cached
    log.info("downloading the safety checker %s from ModelScope (about 350 MB, once)", model_id)
    try:
        path = Path(snapshot_download(model_id, allow_patterns=_WANTED))
    except Exception as exc:
        raise SafetyUnavailable(
            f"the safety checker {setting} is not downloaded and could not be fetched from ModelScope "
            f"({type(exc).__name__}); check the network, point ZBOT_SAFETY_MODEL at a local copy, or set "
            "ZBOT_SAFETY=off") from None
    if not (path / "config.json").is_file():
        raise SafetyUnavailable(f"ModelScope's {model_id} has no config.json: not an image classifier; set "
                                "ZBOT_SAFETY_MODEL to one, or ZBOT_SAFETY=off")
    return path


class ViTChecker:
    """An image classifier for transformers (Falconsai/nsfw_image_detection by default)."""

    name = "vit"

    def __init__(self, model: str, device: str = "cpu", engine_device: str = "auto"):
        self.model_id = model
        self.device_setting = device
        self.engine_device = engine_device  # "auto" puts the checker on the image model's GPU
        self.model = None
        self.processor = None
        self.flagged_labels: list[int] = []
        self._stream = None

    def load(self) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        path = resolve_checker_model(self.model_id)
        setting = self.device_setting
        if setting == "auto":
            engine = self.engine_device if self.engine_device.startswith("cuda") else "cuda"
            setting = engine if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(setting)
            if self.device.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("no CUDA GPU here")
            try:  # the Pillow implementation: no torchvision needed
                self.processor = AutoImageProcessor.from_pretrained(path, backend="pil")
            except TypeError:  # transformers before the backend argument
                self.processor = AutoImageProcessor.from_pretrained(path)
            self.model = AutoModelForImageClassification.from_pretrained(path, dtype=torch.float32)
            self.model = self.model.to(self.device).eval()
            # On a GPU, a stream of its own: the check's few kernels run beside the render's, not in its queue.
            self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        except Exception as exc:  # noqa: BLE001 - whatever it was, one line and no start
            raise SafetyUnavailable(f"the safety checker in {path} could not be loaded on {setting} "
                                    f"({type(exc).__name__}: {str(exc)[:100]}); set ZBOT_SAFETY_DEVICE, run `zbot "
                                    "download` again, or set ZBOT_SAFETY=off") from None
        labels = self.model.config.id2label
        self.flagged_labels = [index for index, label in labels.items() if label.lower() not in SAFE_LABELS]
        if not self.flagged_labels or len(self.flagged_labels) == len(labels):
            raise SafetyUnavailable(f"the safety checker in {path} has labels {sorted(labels.values())}: expected "
                                    f"safe ones ({', '.join(sorted(SAFE_LABELS))}) and flagged ones")
        log.info("safety checker: %s on %s (flags %s)", self.model_id, self.device,
                 ", ".join(labels[i] for i in self.flagged_labels))

    def score(self, image: Any) -> float:
        import torch

        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt")
        with torch.inference_mode(), (torch.cuda.stream(self._stream) if self._stream else contextlib.nullcontext()):
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device, self.model.dtype)).logits
            probabilities = logits.float().softmax(-1)[0]
            return float(probabilities[self.flagged_labels].sum())  # waits for this stream only


# -- the nudenet checker ----------------------------------------------------------------------------

class NudeNetChecker:
    """NudeNet's detector: the score is its most confident detection of an exposed body part."""

    name = "nudenet"

    def __init__(self):
        self.detector = None

    def load(self) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError:
            raise SafetyUnavailable("ZBOT_SAFETY_CHECKER=nudenet needs NudeNet: pip install 'zbot[nudenet]' "
                                    "(AGPL-3.0; see the README), or use the vit checker") from None
        try:
            self.detector = NudeDetector()
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors: one line and no start
            raise SafetyUnavailable(f"NudeNet's detector could not be loaded ({type(exc).__name__}); reinstall "
                                    "'zbot[nudenet]', or set ZBOT_SAFETY=off") from None
        log.info("safety checker: NudeNet (flags %s)", ", ".join(sorted(NUDENET_EXPOSED)))

    def score(self, image: Any) -> float:
        import numpy as np

        # NudeNet converts from RGBA to BGR itself (and back to RGB for its model).
        detections = self.detector.detect(np.asarray(image.convert("RGBA")))
        return max((d["score"] for d in detections if d["class"] in NUDENET_EXPOSED), default=0.0)


def make_checker(settings) -> Checker | None:
    """The checker the settings ask for, not loaded yet; None with ZBOT_SAFETY=off."""
    if settings.safety == "off":
        return None
    if settings.safety_checker == "nudenet":
        return NudeNetChecker()
    return ViTChecker(settings.safety_model, settings.safety_device, settings.device)
