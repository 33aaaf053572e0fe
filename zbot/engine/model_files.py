"""Where the model comes from: a local diffusers folder or a ModelScope id (from its cache without the
network when the snapshot there is complete), and which device and dtype it runs on. The engine
(zbot/engine/engine.py) loads what these resolve."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# torch is imported where it is used: checking a model folder at start must not wait for it (seconds).
_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class ModelNotFound(Exception):
    """The model id or directory can't be used; the message says what to do."""


def resolve_device(setting: str) -> torch.device:
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelNotFound(f"ZBOT_DEVICE={setting} but this machine has no usable CUDA GPU")
    return device


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    import torch

    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, _DTYPES[setting])


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


def is_local(model: str) -> bool:
    """Whether ZBOT_MODEL names a folder (checked in milliseconds) rather than a ModelScope id."""
    return Path(model).expanduser().exists() or model.startswith(("/", ".", "~")) or model.count("/") != 1


def resolve_model(model: str) -> Path:
    """A local directory as it is; otherwise a ModelScope id, taken from the cache ($MODELSCOPE_CACHE)
    without touching the network when the snapshot there is complete, else downloaded."""
    local = Path(model).expanduser()
    if is_local(model) and not local.exists():
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
