"""What the GPU benchmarks share: the prompt and sizes, the figures and how they are printed, timing
helpers, and the Z-Image pipeline at full size with random weights (or the tiny one on a CPU)."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.core.jobs import RenderSpec  # noqa: E402
from zbot.engine.engine import Engine  # noqa: E402

# The five sizes zbot offers by default (zbot/config.py DEFAULT_SIZES), width x height.
BOT_SIZES = [(1024, 1024), (864, 1152), (1152, 864), (720, 1280), (1280, 720)]
PROMPT = ("a red fox sitting in the snow at sunset, highly detailed fur, soft golden light, "
          "photograph, 85mm lens, shallow depth of field, mountains in the background")
STEPS = 8
SEED = 1234
FIGURES: dict = {}
SCRIPT = Path(__file__).with_name("gpu_bench.py")  # what run_child runs


def say(name: str, value, unit: str = "") -> None:
    """Record a figure and print it at once (the device tool returns the tail of the output)."""
    FIGURES[name] = value
    print(f"{name}: {value}{(' ' + unit) if unit else ''}", flush=True)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return round(float((a - b).norm() / b.norm()), 5)


def gib(n: int) -> float:
    return round(n / 2**30, 2)


# -- the model -----------------------------------------------------------------------------------


def fill_(module: torch.nn.Module) -> None:
    """Matrices and kernels N(0, 0.02), biases 0, norm scales 1 (gpu-bench.md): finite activations."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.ndim >= 2:
                param.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)


def build_full_pipeline(device: torch.device, dtype: torch.dtype, seed: int = 0):
    """Z-Image-Turbo's real component configs, random weights, built on `device` in `dtype`."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    from zbot.engine.tiny import _train_tokenizer

    torch.manual_seed(seed)
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = ZImageTransformer2DModel(
                all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30,
                n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True,
                cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48],
                axes_lens=[1536, 512, 512])
            text_encoder = Qwen3Model(Qwen3Config(
                vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, dtype=dtype))
            vae = AutoencoderKL(
                in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                layers_per_block=2, act_fn="silu", latent_channels=16, norm_num_groups=32, sample_size=1024,
                scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False,
                force_upcast=True, mid_block_add_attention=True)
    finally:
        torch.set_default_dtype(before)
    for model in (transformer, text_encoder, vae):
        model.to(device=device, dtype=dtype)
        fill_(model)
        model.eval()
    # The real Qwen2 tokenizer can't be downloaded here; the tiny model's byte-level BPE gives ids in
    # range (it has fewer merges, so a prompt takes more tokens: FIGURES records how many).
    tokenizer = _train_tokenizer()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0,
                                                use_dynamic_shifting=False)
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)


def build_tiny_pipeline(folder: Path):
    from diffusers import ZImagePipeline

    from zbot.engine.tiny import build_tiny_model

    path = folder / "tiny-model"
    if not path.exists():
        build_tiny_model(path)
    return ZImagePipeline.from_pretrained(str(path))


def build_pipeline(args):
    if args.tiny:
        return build_tiny_pipeline(Path(args.work))
    return build_full_pipeline(torch.device("cuda"), torch.bfloat16)


def photo_like(width: int, height: int):
    """A smooth, photo-like picture for the encoders (random weights draw noise; real pictures are
    mostly smooth): scikit-image's astronaut scaled up if it is installed, else gradients and shapes."""
    import numpy as np
    from PIL import Image, ImageFilter

    try:
        from skimage import data

        return Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC), "astronaut"
    except Exception:
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        r = 128 + 100 * np.sin(x / 97) * np.cos(y / 131)
        g = 255 * x / width
        b = 255 * (1 - y / height) * (0.5 + 0.5 * np.sin((x + y) / 211))
        grain = np.random.default_rng(0).normal(0, 2.0, (height, width, 3))
        pixels = np.clip(np.stack([r, g, b], -1) + grain, 0, 255).astype(np.uint8)
        return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.7)), "synthetic"


def timed(call, repeats: int, device: torch.device) -> tuple[list[float], object]:
    """Seconds each of `repeats` calls took, the device synchronised around each; and the last result."""
    times, result = [], None
    for _ in range(repeats):
        sync(device)
        began = time.perf_counter()
        result = call()
        sync(device)
        times.append(time.perf_counter() - began)
    return times, result


def time_render(engine: Engine, spec: RenderSpec, repeats: int) -> tuple[list[float], object]:
    return timed(lambda: engine.render(spec, lambda done, total: None), repeats, engine.device)


def run_child(args, phase: str, extra: list[str], timeout: float, *, site: Path | None = None) -> dict:
    """bench/gpu_bench.py again in a process of its own for one phase; its figures join FIGURES. With
    `site`, the process imports from that folder only (`python -S`, bench/clean_env.py)."""
    out = Path(args.work) / f"child-{phase}-{len(FIGURES)}.json"
    python, env = [sys.executable], None
    if site is not None:
        # Bytecode in a folder of its own, written by the first start and read by the later ones, as pip
        # writes it at install time (the machine's site-packages hold none and can't be written to).
        python, env = [sys.executable, "-S"], {**os.environ, "PYTHONPATH": str(site),
                                               "PYTHONPYCACHEPREFIX": str(site.parent / "bytecode")}
    command = python + [str(SCRIPT), "--child", phase, "--child-out", str(out),
               "--work", str(args.work),
               "--size", f"{args.size[0]}x{args.size[1]}", "--repeats", str(args.repeats),
               "--started", repr(time.time())] + extra
    if args.tiny:
        command.append("--tiny")
    print(f"[{phase}] {' '.join(command[len(python) + 1:])}", flush=True)
    try:
        subprocess.run(command, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        say(f"{phase}_timed_out_after_s", timeout)
    if out.exists():
        figures = json.loads(out.read_text())
        FIGURES.update(figures)
        return figures
    return {}


def card_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} x{torch.get_num_threads()} threads"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)
