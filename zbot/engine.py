"""The Z-Image pipeline: where the weights come from, how they load, how one image is drawn.

Only the executor's worker thread calls `Engine.load` and `Engine.render`: the pipeline keeps per-call
state (scheduler timesteps, tokenizer) and must never be called from two threads at once.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch

from .jobs import RenderSpec

log = logging.getLogger(__name__)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class ModelNotFound(Exception):
    """The model id or directory can't be used; the message says what to do."""


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelNotFound(f"ZBOT_DEVICE={setting} but this machine has no usable CUDA GPU")
    return device


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[setting]


def snapshot_is_complete(path: Path) -> bool:
    """A diffusers pipeline folder with every component's config and every weight shard present."""
    index = path / "model_index.json"
    if not index.is_file():
        return False
    for name, value in json.loads(index.read_text()).items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        part = path / name
        if not part.is_dir() or not any(part.iterdir()):
            return False
        for shard_index in part.glob("*.index.json"):
            shards = set(json.loads(shard_index.read_text()).get("weight_map", {}).values())
            if any(not (part / shard).is_file() for shard in shards):
                return False
    return True


def resolve_model(model: str) -> Path:
    """A local directory as it is; otherwise a ModelScope id, taken from the cache ($MODELSCOPE_CACHE)
    without touching the network when the snapshot there is complete, else downloaded."""
    local = Path(model).expanduser()
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_local and not local.exists():
        raise ModelNotFound(f"ZBOT_MODEL={model}: no such directory (or use a ModelScope id like Org/Name)")
    if local.exists():
        if not snapshot_is_complete(local):
            raise ModelNotFound(f"{local} is not a complete diffusers Z-Image pipeline folder "
                                "(model_index.json and each component's files)")
        return local
    from modelscope.hub.snapshot_download import snapshot_download

    try:
        cached = Path(snapshot_download(model, local_files_only=True))
        if snapshot_is_complete(cached):
            return cached
    except Exception:  # not cached yet (modelscope raises CacheNotFound)
        pass
    cache = os.environ.get("MODELSCOPE_CACHE", "~/.cache/modelscope")
    log.info("downloading %s into %s (about 20 GB, once)", model, cache)
    try:
        path = Path(snapshot_download(model))
    except Exception as exc:
        reason = str(exc).split(":")[0][:120]
        raise ModelNotFound(f"could not download {model} from ModelScope ({type(exc).__name__}: {reason}); "
                            "check the network, or point ZBOT_MODEL at a local copy") from exc
    if not snapshot_is_complete(path):
        raise ModelNotFound(f"the download of {model} into {path} is incomplete; run the command again")
    return path


class Engine:
    """The renderer the executor runs: a diffusers ZImagePipeline on one device."""

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", compile: str = "off",
                 quantize: str = "none", offload: str = "none", compile_cache: Path | None = None):
        self.model = model
        self.compile, self.quantize, self.offload, self.compile_cache = compile, quantize, offload, compile_cache
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.pipe = None

    def load(self) -> None:
        from diffusers import ZImagePipeline

        path = resolve_model(self.model)
        log.info("loading %s on %s (%s)", path, self.device, str(self.dtype).removeprefix("torch."))
        pipe = ZImagePipeline.from_pretrained(str(path), dtype=self.dtype)
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    @torch.inference_mode()
    def render(self, spec: RenderSpec, on_step: Callable[[int, int], None]):
        """Draw one image; returns a PIL image. `on_step(done, total)` is called after each step."""
        assert self.pipe is not None, "load() first"

        def step_end(pipe, index: int, timestep, tensors: dict) -> dict:
            on_step(index + 1, spec.steps)
            return tensors

        generator = torch.Generator(device=self.device).manual_seed(spec.seed)
        output = self.pipe(
            prompt=spec.prompt,
            height=spec.height,
            width=spec.width,
            num_inference_steps=spec.steps,
            guidance_scale=0.0,  # Turbo is distilled for no guidance; the default 5.0 doubles the work
            generator=generator,
            callback_on_step_end=step_end,
        )
        return output.images[0]

    def recover(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
