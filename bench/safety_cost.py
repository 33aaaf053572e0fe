"""What the safety check costs per 1024x1024 image, through zbot's own Inspector (flat-colour check,
the checker's preprocessing, the model), on one CPU core and, where there is one, on the GPU.

    python bench/safety_cost.py [--repeat 20] [--nudenet]

The vit checker is measured with random weights of the real architecture of
Falconsai/nsfw_image_detection (ViT-Base/16 at 224x224, two labels): the same arithmetic as the real
checkpoint, which can't be downloaded where this runs. NudeNet (with --nudenet, if installed) is its real
detector, on the CPU. The image is a real photograph scaled to 1024x1024. One JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.engine.safety import Inspector, NudeNetChecker, ViTChecker  # noqa: E402

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "safe" / "astronaut.jpg"


def falconsai_shaped(out: Path) -> Path:
    """A random ViT-Base/16 image classifier with Falconsai/nsfw_image_detection's config and preprocessing."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, num_labels=2, id2label={0: "normal", 1: "nsfw"},
                       label2id={"normal": 0, "nsfw": 1})
    ViTForImageClassification(config).save_pretrained(out)
    try:
        processor = ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    except ImportError:  # transformers 5 without torchvision: the Pillow implementation, same numbers
        from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

        processor = ViTImageProcessorPil(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                                         image_std=[0.5] * 3)
    processor.save_pretrained(out)
    return out


def timed(inspector: Inspector, image: Image.Image, repeat: int, sync=lambda: None) -> dict:
    for _ in range(3):  # warm up (first calls allocate, pick kernels)
        inspector(image)
    sync()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        inspector(image)
        sync()
        times.append(time.perf_counter() - began)
    return {"median_ms": round(1000 * statistics.median(times), 1), "min_ms": round(1000 * min(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--nudenet", action="store_true", help="also time NudeNet's detector (CPU)")
    args = parser.parse_args()
    image = Image.open(PHOTO).convert("RGB").resize((1024, 1024))
    out: dict = {"bench": "safety_cost", "image": "1024x1024", "python": platform.python_version(),
                 "machine": platform.machine(), "cpu": platform.processor() or None}
    began = time.perf_counter()
    Inspector(None, 0.5)(image)
    out["flat_check_ms"] = round(1000 * (time.perf_counter() - began), 2)

    torch.set_num_threads(1)  # one core, as the encoder thread has
    with tempfile.TemporaryDirectory() as folder:
        path = falconsai_shaped(Path(folder) / "vit")
        cpu = ViTChecker(str(path), "cpu")
        cpu.load()
        out["vit_cpu_1_thread"] = timed(Inspector(cpu, 0.5), image, args.repeat)
        print(json.dumps({"vit_cpu_1_thread": out["vit_cpu_1_thread"]}), flush=True)
        if torch.cuda.is_available():
            gpu = ViTChecker(str(path), "cuda")
            gpu.load()
            out["gpu"] = torch.cuda.get_device_name()
            out["vit_cuda"] = timed(Inspector(gpu, 0.5), image, args.repeat, torch.cuda.synchronize)
            print(json.dumps({"vit_cuda": out["vit_cuda"]}), flush=True)
    if args.nudenet:
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core for onnxruntime too
        except (AttributeError, OSError):
            pass
        nude = NudeNetChecker()
        nude.load()
        out["nudenet_cpu_1_core"] = timed(Inspector(nude, 0.5), image, args.repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
