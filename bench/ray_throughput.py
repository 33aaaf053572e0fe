"""Throughput of the Ray executor: images per second with one render worker against two, through the
bot's own Executor and RayRenderer, each worker a Ray actor with its own GPU and the full-size
Z-Image-Turbo pipeline (the real shapes, random weights: the real arithmetic, not the real pictures;
see /work/shared/notes/gpu-bench.md).

    python bench/ray_throughput.py          # a machine with two GPUs: 16 images, 1024x1024, 8 steps
    python bench/ray_throughput.py --tiny   # a dry run on a CPU: the tiny model, two CPU workers

Both workers load once; then the same queue of images goes through one worker, then through two.
Eager bf16 (no torch.compile): the ratio is what this measures. Prints each figure as it comes and one
JSON line last (also written to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

BENCH = str(Path(__file__).resolve().parent)
REPO = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, REPO)
# The actors are new processes: they find zbot (and bench/gpu_bench.py) the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, BENCH, os.environ.get("PYTHONPATH")]))

from zbot.core.executor import Executor  # noqa: E402
from zbot.core.imaging import encode_png  # noqa: E402
from zbot.core.jobs import RenderSpec  # noqa: E402
from zbot.engine.engine import Engine  # noqa: E402
from zbot.engine.ray_workers import RayRenderer  # noqa: E402

PROMPTS = [
    "a red fox sitting in the snow at sunset, highly detailed, soft light, photograph",
    "a futuristic city skyline at night with neon lights and flying cars, cyberpunk style",
    "watercolor illustration of a small house in the forest, children's book, cute and cozy",
    "an astronaut riding a horse on the moon, digital art, cinematic composition",
]


def say(*parts) -> None:
    print(*parts, flush=True)


# -- what each actor builds (runs in the actor's process, on the GPU Ray gave it) -------------------


def full_size_pipeline(device: str = "cuda", dtype: torch.dtype = torch.bfloat16):
    """Z-Image-Turbo's three models at their released sizes (6.2 B transformer, Qwen3-4B text encoder,
    FLUX-layout VAE), built directly on the device with random weights; the tiny model's tokenizer.
    (bench/gpu_bench.py's builder is used instead where it exists: the same model as the 1-GPU figures.)"""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    from zbot.engine.tiny import _train_tokenizer

    tokenizer = _train_tokenizer()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            text_encoder = Qwen3Model(Qwen3Config(
                vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id))
            # The constructor's defaults are the released config (dim 3840, 30 layers, 30 heads...).
            transformer = ZImageTransformer2DModel(axes_lens=[1536, 512, 512])
            vae = AutoencoderKL(
                in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                layers_per_block=2, latent_channels=16, norm_num_groups=32, sample_size=1024,
                scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for model in (text_encoder, transformer, vae):
            for param in model.parameters():
                if param.ndim >= 2:
                    param.normal_(0.0, 0.02)  # finite activations through the whole stack
            model.to(device=device, dtype=dtype).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0,
                                                use_dynamic_shifting=False)
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)


def full_size_engine() -> Engine:
    began = time.perf_counter()
    try:
        from gpu_bench import build_full_pipeline
    except ImportError:
        pipe = full_size_pipeline()
    else:
        pipe = build_full_pipeline(torch.device("cuda"), torch.bfloat16)
    print(f"full-size pipeline built on {torch.cuda.get_device_name()} "
          f"in {time.perf_counter() - began:.1f} s", flush=True)
    if hasattr(Engine, "from_pipeline"):
        return Engine.from_pipeline(pipe, device="cuda", compile="off")
    engine = Engine("<random full-size>", device="cuda", compile="off")  # an older Engine: no from_pipeline
    engine.load = lambda: setattr(engine, "pipe", pipe.to("cuda"))
    return engine


# -- the measurement -------------------------------------------------------------------------------


def card_names() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return [platform.processor() or platform.machine()]


async def run_queue(renderers: list[RayRenderer], specs: list[RenderSpec]) -> dict:
    """Push the whole queue through an Executor over `renderers`; images/s from first submit to last PNG."""
    executor = Executor(renderers, encode_png)
    executor.start()
    await executor.wait_ready()
    for renderer in renderers:
        renderer.rendered.clear()
    began = time.perf_counter()
    results = await asyncio.gather(*(executor.submit(spec) for spec in specs))
    elapsed = time.perf_counter() - began
    await executor.shutdown()
    assert [r.job_id for r in results] == [s.job_id for s in specs]
    return {"workers": len(renderers), "images": len(results), "seconds": round(elapsed, 2),
            "images_per_s": round(len(results) / elapsed, 3),
            "render_s_median": round(statistics.median(r.render_s for r in results), 3),
            "per_worker": [len(r.rendered) for r in renderers]}


async def bench(args: argparse.Namespace) -> dict:
    if args.tiny:
        from zbot.engine.tiny import build_tiny_model

        model = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
        make_engine = functools.partial(Engine, str(model), device="cpu", compile="off")
        ray.init(num_cpus=2, include_dashboard=False, namespace="zbot-bench")
        gpus = 0
    else:
        make_engine = full_size_engine
        ray.init(include_dashboard=False, namespace="zbot-bench")
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if gpus < 2:
            raise SystemExit(f"this needs two GPUs; Ray sees {gpus}")
    cards = card_names()
    say(f"Ray {ray.__version__}, torch {torch.__version__}; cards: {cards}")
    renderers = [RayRenderer(make_engine, index=i, num_gpus=1 if gpus else 0, num_cpus=1) for i in range(2)]
    try:
        began = time.perf_counter()
        warm = [RenderSpec(1000 + i, PROMPTS[i], 1000 + i, args.size, args.size, args.steps)
                for i in range(2)]
        warmed = await run_queue(renderers, warm)  # loads both actors (in parallel), a first image on each
        say(f"both workers loaded and warmed up in {time.perf_counter() - began:.1f} s: "
            f"{[r.where for r in renderers]}; per worker {warmed['per_worker']}")
        specs = [RenderSpec(i, PROMPTS[i % len(PROMPTS)], i, args.size, args.size, args.steps)
                 for i in range(1, args.images + 1)]
        one = await run_queue(renderers[:1], specs)
        say(f"1 worker : {one['images']} images in {one['seconds']} s = {one['images_per_s']} images/s "
            f"(render median {one['render_s_median']} s)")
        two = await run_queue(renderers, specs)
        say(f"2 workers: {two['images']} images in {two['seconds']} s = {two['images_per_s']} images/s "
            f"(render median {two['render_s_median']} s, per worker {two['per_worker']})")
    finally:
        for renderer in renderers:
            renderer.close()
        ray.shutdown()
    ratio = two["images_per_s"] / one["images_per_s"]
    say(f"two workers / one worker: {ratio:.2f}x")
    import diffusers

    return {"bench": "ray_throughput", "mode": "tiny-cpu" if args.tiny else "full-size-random-bf16-eager",
            "cards": cards, "size": f"{args.size}x{args.size}", "steps": args.steps, "images": args.images,
            "one_worker": one, "two_workers": two, "speedup": round(ratio, 3),
            "ray": ray.__version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU dry run: the tiny model, two CPU workers")
    parser.add_argument("--images", type=int, default=None, help="images in the queue (16; 8 with --tiny)")
    parser.add_argument("--size", type=int, default=None, help="image side (1024; 256 with --tiny)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args()
    args.images = args.images or (8 if args.tiny else 16)
    args.size = args.size or (256 if args.tiny else 1024)
    result = asyncio.run(bench(args))
    line = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line, file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
