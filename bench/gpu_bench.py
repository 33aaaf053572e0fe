"""Z-Image-Turbo on one GPU through zbot's own engine, against plain diffusers on the same card.

Full-size components with random weights (the real configs: 6.2 B transformer, Qwen3-4B text encoder,
FLUX-layout VAE), built on the GPU in bf16 and handed to `zbot.engine.Engine`, so every figure is the
path the bot runs: load-time setup (compile, float8, offload, warm-up) and `render()`. Random weights
do the same arithmetic as the real ones, so times and memory hold; image quality doesn't (float8 is
judged by the relative error of its latents against bf16 from the same noise).

    python bench/gpu_bench.py --phases eager,main,offload    # one GPU call
    python bench/gpu_bench.py --phases eager,fp8              # fp8 compiles in a process of its own
    python bench/gpu_bench.py --phases eager,start            # cold and warm start, two processes
    python bench/gpu_bench.py --tiny                          # the tiny model on the CPU (debugging,
                                                              # and the CPU fallback's timing)
Phases:
  eager    plain diffusers, eager, 8 steps (`pipe(prompt, guidance_scale=0.0)`): the baseline.
  main     the engine, bf16, compiled: warm-up, GPU part (prompt in -> decoded pixels), its parts,
           no recompiles over every caption length and size, encoding and image ready, a queue of
           `--jobs` through the real Executor (images/s, GPU idle between jobs, event-loop lag), memory.
  offload  ZBOT_OFFLOAD=model (diffusers' model CPU offload): time and peak GPU memory.
  fp8      ZBOT_QUANTIZE=fp8 (torchao float8, per-row): warm-up, GPU part, latent error vs bf16, memory
           (in a process of its own, with its own copy of the weights).
  refine   Vary and Upscale (img2img, 2x per side) through the engine against plain diffusers'
           img2img; in a call of its own (`--phases refine`): the baseline must run before any compile.
  sdpa     the attention of one block on each scaled_dot_product_attention backend.
  start    the pipeline saved to local disk (so the weights sit in the page cache), then two fresh
           processes with one new compile cache: process start -> first image, cold then warm.
Prints each figure as soon as it is known, then one JSON line with all of them, and writes that JSON to
--out (default: $OUT if set, else bench/results) as gpu-<card>-<phases>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROCESS_START = time.time()  # before the heavy imports: "process start" for the start phase

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.acceleration import compiled_graphs  # noqa: E402
from zbot.engine import Engine  # noqa: E402
from zbot.executor import Executor  # noqa: E402
from zbot.imaging import PNG_BACKEND, encode_png  # noqa: E402
from zbot.jobs import RenderSpec  # noqa: E402
from zbot.prompts import caption_length, caption_lengths  # noqa: E402

# The five sizes zbot offers by default (zbot/config.py DEFAULT_SIZES), width x height.
BOT_SIZES = [(1024, 1024), (864, 1152), (1152, 864), (720, 1280), (1280, 720)]
PROMPT = ("a red fox sitting in the snow at sunset, highly detailed fur, soft golden light, "
          "photograph, 85mm lens, shallow depth of field, mountains in the background")
STEPS = 8
SEED = 1234
FIGURES: dict = {}


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

    from zbot.tiny import _train_tokenizer

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

    from zbot.tiny import build_tiny_model

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


# -- phases --------------------------------------------------------------------------------------


def phase_eager(args, pipe, device) -> None:
    """Plain diffusers: the pipeline called as its docs show, eager, 8 steps, no guidance."""
    pipe.set_progress_bar_config(disable=True)
    width, height = args.size

    def once():
        sync(device)
        began = time.perf_counter()
        image = pipe(prompt=PROMPT, height=height, width=width, num_inference_steps=STEPS, guidance_scale=0.0,
                     generator=torch.Generator(device).manual_seed(SEED)).images[0]
        sync(device)
        return time.perf_counter() - began, image

    once()
    times = [once()[0] for _ in range(args.repeats)]
    say("baseline_eager_diffusers_s", median(times), "s (median, plain diffusers eager)")
    FIGURES["baseline_eager_diffusers_all_s"] = [round(t, 4) for t in times]
    # Its text encoder step alone (512 padded tokens) for the breakdown.
    te = []
    for _ in range(args.repeats):
        sync(device)
        began = time.perf_counter()
        pipe._encode_prompt([PROMPT], device=device)
        sync(device)
        te.append(time.perf_counter() - began)
    say("baseline_text_encoder_512_s", median(te), "s")


def time_render(engine: Engine, spec: RenderSpec, repeats: int) -> tuple[list[float], object]:
    times, image = [], None
    for _ in range(repeats):
        sync(engine.device)
        began = time.perf_counter()
        image = engine.render(spec, lambda done, total: None)
        sync(engine.device)
        times.append(time.perf_counter() - began)
    return times, image


def phase_main(args, pipe, device) -> None:
    width, height = args.size
    sizes = [tuple(args.size)] + [s for s in args.sizes if tuple(s) != tuple(args.size)]
    spec = RenderSpec(1, PROMPT, SEED, width, height, STEPS)

    # Reference: the engine eager (no compile) on the same pipeline - also the compile's noise floor.
    eager = Engine.from_pipeline(pipe, device=str(device), compile="off", sizes=sizes)
    eager.load()
    eager_times, _ = time_render(eager, spec, args.repeats)
    say("engine_eager_gpu_part_s", median(eager_times), "s (engine, not compiled)")
    reference = eager.latents(spec)

    engine = Engine.from_pipeline(pipe, device=str(device), compile="auto" if not args.tiny else "off",
                                  sizes=sizes, compile_cache=args.cache)
    began = time.perf_counter()
    engine.load()
    tokens = engine.prompts.token_count(PROMPT)
    say("prompt_tokens", tokens)
    say("prompt_caption_tokens", caption_length(tokens))
    say("warmup_s", round(engine.warmup_s or 0.0, 1), f"s (compiled={engine.compiled}, sizes={len(sizes)})")
    say("load_with_warmup_s", round(time.perf_counter() - began, 1), "s")
    say("compiled_graphs_after_warmup", compiled_graphs())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, image = time_render(engine, spec, args.repeats)
    say("gpu_part_s", median(times), f"s (median of {len(times)}, compiled={engine.compiled}, "
        f"{str(engine.dtype).removeprefix('torch.')})")
    FIGURES["gpu_part_all_s"] = [round(t, 4) for t in times]
    if device.type == "cuda":
        say("peak_gpu_memory_gib", gib(torch.cuda.max_memory_allocated(device)), "GiB allocated")
        say("peak_gpu_memory_reserved_gib", gib(torch.cuda.max_memory_reserved(device)), "GiB reserved")
    say("latent_rel_error_compiled_vs_eager_bf16", rel_error(engine.latents(spec), reference))

    # Parts: the text encoder (bucketed), the latents (text encoder + steps), the rest (VAE + pixels).
    te, lat = [], []
    for _ in range(args.repeats):
        sync(device)
        began = time.perf_counter()
        engine.prompts.encode(PROMPT)
        sync(device)
        te.append(time.perf_counter() - began)
        began = time.perf_counter()
        engine.latents(spec)
        sync(device)
        lat.append(time.perf_counter() - began)
    say("text_encoder_bucketed_s", median(te), f"s (padded to {engine.prompts.tokenize(PROMPT)[0].shape[1]})")
    say("text_encoder_cuda_graphs", engine.prompts.graphed)
    say("latents_only_s", median(lat), "s (text encoder + transformer steps)")
    say("vae_and_pixels_s", round(median(times) - median(lat), 4), "s (GPU part - latents only)")
    vae = engine.pipe.vae
    dec = []
    with torch.inference_mode():  # as in the engine: tensors made outside it would need other graphs
        latents = (engine.latents(spec).to(vae.dtype) / vae.config.scaling_factor) + vae.config.shift_factor
        for _ in range(args.repeats):
            sync(device)
            began = time.perf_counter()
            vae.decode(latents, return_dict=False)
            sync(device)
            dec.append(time.perf_counter() - began)
    say("vae_decode_s", median(dec), "s")

    # No recompiles while serving: every caption length at the main size, one prompt at each other size.
    graphs = compiled_graphs()
    began = time.perf_counter()
    sweep = 0
    for caption in caption_lengths():
        engine.render(RenderSpec(2, engine.prompts.prompt_for_caption(caption), 7, width, height, 1),
                      lambda *_: None)
        sweep += 1
    for w, h in sizes[1:]:
        for caption in (caption_lengths()[0], caption_lengths()[-1]):
            prompt = engine.prompts.prompt_for_caption(caption)
            engine.render(RenderSpec(3, prompt, 7, w, h, 1), lambda *_: None)
            sweep += 1
    say("recompile_sweep_renders", sweep)
    say("recompile_sweep_s", round(time.perf_counter() - began, 1), "s")
    say("recompiles_while_serving", compiled_graphs() - graphs + engine.recompiles)

    # Encoding: the rendered (noise-like) image and a smooth photo-like one.
    phase_encode(image, width, height)
    say("image_ready_s", round(median(times) + FIGURES["encode_png_rendered_s"], 4),
        "s (GPU part + PNG encode of the rendered image)")

    # Back to back through the real Executor, with the event loop's lag measured meanwhile.
    asyncio.run(queue_run(engine, args.jobs, width, height))
    FIGURES["_engine"] = engine  # for the offload phase (same compiled graphs)


def phase_encode(image, width: int, height: int) -> None:
    import io

    def time_it(fn, n=7):
        fn()
        times = []
        for _ in range(n):
            began = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - began)
        return median(times), len(out)

    def pillow(img, **kw):
        def encode():
            buffer = io.BytesIO()
            img.save(buffer, **kw)
            return buffer.getvalue()
        return encode

    photo, kind = photo_like(width, height)
    say("encode_png_backend", PNG_BACKEND)
    for label, img in (("rendered", image), ("photo", photo)):
        s, n = time_it(lambda: encode_png(img))
        say(f"encode_png_{label}_s", s, f"s, {n / 1e6:.2f} MB (zbot.imaging)")
        FIGURES[f"encode_png_{label}_mb"] = round(n / 1e6, 3)
        s, n = time_it(pillow(img, format="PNG", compress_level=1))
        say(f"encode_pillow_png1_{label}_s", s, f"s, {n / 1e6:.2f} MB")
        s, n = time_it(pillow(img, format="PNG"))
        say(f"encode_pillow_png6_{label}_s", s, f"s, {n / 1e6:.2f} MB")
        s, n = time_it(pillow(img, format="JPEG", quality=95))
        say(f"encode_jpeg95_{label}_s", s, f"s, {n / 1e6:.2f} MB (lossy, for reference)")
    FIGURES["encode_photo_kind"] = kind


class TimedRenderer:
    """The engine, with the host time at which each render started and ended."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.spans: list[tuple[float, float]] = []

    def load(self) -> None:  # loaded already
        pass

    def render(self, spec, on_step):
        began = time.perf_counter()
        image = self.engine.render(spec, on_step)  # ends with the pixels on the host: the GPU is idle
        self.spans.append((began, time.perf_counter()))
        return image

    def recover(self) -> None:
        self.engine.recover()


async def queue_run(engine: Engine, jobs: int, width: int, height: int) -> None:
    timed = TimedRenderer(engine)
    executor = Executor([timed], encode_png)
    executor.start()
    await executor.wait_ready()
    lags: list[float] = []
    running = True

    async def probe() -> None:  # what the bot's event loop would feel: sleep 5 ms, measure the overshoot
        while running:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - began - 0.005)

    settled: dict[int, float] = {}
    progress = [0]
    probe_task = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    began = time.perf_counter()
    futures = []
    for index in range(jobs):
        spec = RenderSpec(100 + index, f"{PROMPT}, variation {index}", SEED + index, width, height, STEPS)
        future = executor.submit(spec, on_progress=lambda p: progress.__setitem__(0, progress[0] + 1))
        future.add_done_callback(lambda f, i=index: settled.__setitem__(i, time.perf_counter()))
        futures.append(future)
    results = await asyncio.gather(*futures)
    wall = time.perf_counter() - began
    running = False
    await probe_task
    await executor.shutdown()

    spans = timed.spans
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
    renders = [end - start for start, end in spans]
    after_render = [settled[i] - spans[i][1] for i in range(len(spans))]  # encode + hand-over
    say("queue_jobs", jobs)
    say("queue_images_per_s", round(jobs / wall, 3), "images/s")
    say("queue_wall_s", round(wall, 2), "s")
    say("queue_render_median_s", median(renders), "s")
    say("gpu_idle_between_jobs_median_ms", round(1000 * median(gaps), 2), "ms")
    say("gpu_idle_between_jobs_max_ms", round(1000 * max(gaps), 2), "ms")
    say("queue_overhead_per_job_ms", round(1000 * (wall / jobs - statistics.mean(renders)), 2),
        "ms (wall / jobs - mean render)")
    say("encode_after_render_median_ms", round(1000 * median(after_render), 2),
        "ms (render end -> result on the loop, encoding overlapped with the next render)")
    say("loop_lag_p50_ms", round(1000 * pct(lags, 0.50), 2), "ms")
    say("loop_lag_p99_ms", round(1000 * pct(lags, 0.99), 2), "ms")
    say("loop_lag_max_ms", round(1000 * max(lags), 2), "ms")
    FIGURES["loop_lag_samples"] = len(lags)
    FIGURES["progress_events"] = progress[0]
    assert all(r.png.startswith(b"\x89PNG") for r in results)


def phase_refine(args, pipe, device) -> None:
    """Vary (img2img at the image's size, ZBOT_VARY_STRENGTH) and Upscale (img2img of the image enlarged
    2x per side, ZBOT_UPSCALE_STRENGTH) through the engine, against plain diffusers' ZImageImg2ImgPipeline
    on the same modules (eager, as its docs call it, with the bot's steps and guidance 0). Run it in a
    process where no other phase compiled the pipeline first: the baseline must be eager."""
    from diffusers import ZImageImg2ImgPipeline
    from PIL import Image

    from zbot.config import Settings
    from zbot.jobs import Source, denoising_steps, upscaled_size

    fields = Settings.model_fields
    vary, upscale = fields["vary_strength"].default, fields["upscale_strength"].default
    width, height = args.size
    big = upscaled_size(width, height)
    source, kind = photo_like(width, height)
    png = encode_png(source)
    say("vary_strength", vary)
    say("vary_steps", denoising_steps(STEPS, vary), f"of {STEPS}")
    say("upscale_strength", upscale)
    say("upscale_steps", denoising_steps(STEPS, upscale), f"of {STEPS}")
    say("upscale_size", f"{big[0]}x{big[1]}")
    repeats = max(3, args.repeats)

    plain = ZImageImg2ImgPipeline(**pipe.components)
    plain.set_progress_bar_config(disable=True)

    def plain_once(w: int, h: int, strength: float) -> float:
        sync(device)
        began = time.perf_counter()
        image = source if (w, h) == source.size else source.resize((w, h), Image.Resampling.LANCZOS)
        plain(prompt=PROMPT, image=image, strength=strength, width=w, height=h, num_inference_steps=STEPS,
              guidance_scale=0.0, generator=torch.Generator(device).manual_seed(SEED)).images[0]
        sync(device)
        return time.perf_counter() - began

    for name, (w, h), strength in (("vary", (width, height), vary), ("upscale", big, upscale)):
        plain_once(w, h, strength)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = [plain_once(w, h, strength) for _ in range(repeats)]
        say(f"baseline_diffusers_{name}_s", median(times), f"s (median, plain diffusers img2img {w}x{h}, eager)")
        FIGURES[f"baseline_diffusers_{name}_all_s"] = [round(t, 4) for t in times]
        if device.type == "cuda":
            say(f"baseline_diffusers_{name}_peak_gib", round(gib(torch.cuda.max_memory_allocated(device)), 2), "GiB")

    engine = Engine.from_pipeline(pipe, device=str(device), compile="auto" if not args.tiny else "off",
                                  sizes=[tuple(args.size)], compile_cache=args.cache)
    began = time.perf_counter()
    engine.load()
    say("engine_upscale_sizes", [f"{w}x{h}" for w, h in engine.upscale_sizes])
    say("warmup_s", round(engine.warmup_s or 0.0, 1), f"s (compiled={engine.compiled}, text-to-image and "
        "upscale sizes)")
    say("load_with_warmup_s", round(time.perf_counter() - began, 1), "s")
    for name, (w, h), strength in (("vary", (width, height), vary), ("upscale", big, upscale)):
        spec = RenderSpec(1, PROMPT, SEED, w, h, STEPS, source=Source(png=png), strength=strength)
        engine.render(spec, lambda done, total: None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, image = time_render(engine, spec, repeats)
        assert image.size == (w, h)
        say(f"engine_{name}_s", median(times), f"s (median, zbot engine {w}x{h}, source PNG in -> image out)")
        FIGURES[f"engine_{name}_all_s"] = [round(t, 4) for t in times]
        say(f"{name}_speedup", round(FIGURES[f"baseline_diffusers_{name}_s"] / FIGURES[f"engine_{name}_s"], 2), "x")
        if device.type == "cuda":
            say(f"engine_{name}_peak_gib", round(gib(torch.cuda.max_memory_allocated(device)), 2), "GiB")
    # An upscale whose source is no longer kept: drawn again first, then enlarged.
    redraw = RenderSpec(1, PROMPT, SEED, *big, STEPS, source=Source(redraw=RenderSpec(1, PROMPT, SEED, width, height,
                                                                                       STEPS)), strength=upscale)
    times, _ = time_render(engine, redraw, 3)
    say("engine_upscale_redrawn_source_s", median(times), "s (the source drawn again first)")
    say("recompiles_while_serving", engine.recompiles)
    say("source_image", kind)


def phase_offload(args, pipe, device) -> None:
    if device.type != "cuda":
        say("offload_skipped", "CPU offload needs a GPU")
        return
    width, height = args.size
    spec = RenderSpec(1, PROMPT, SEED, width, height, STEPS)
    previous = FIGURES.pop("_engine", None)
    compile_mode = "auto" if previous is not None and previous.compiled else "off"
    if previous is not None and previous.prompts is not None:
        previous.prompts._graphs = {}  # their memory points at the text encoder's GPU weights
    del previous
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    engine = Engine.from_pipeline(pipe, device=str(device), compile=compile_mode, offload="model",
                                  sizes=[tuple(args.size)])
    engine.load()
    say("offload_warmup_s", round(engine.warmup_s or 0.0, 1), "s")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, _ = time_render(engine, spec, max(3, args.repeats // 2))
    say("offload_gpu_part_s", median(times), f"s (ZBOT_OFFLOAD=model, compiled={engine.compiled})")
    say("offload_recompiles", engine.recompiles)
    if device.type == "cuda":
        say("offload_peak_gpu_memory_gib", gib(torch.cuda.max_memory_allocated(device)), "GiB allocated")
        say("offload_peak_gpu_memory_reserved_gib", gib(torch.cuda.max_memory_reserved(device)),
            "GiB reserved")


def phase_sdpa(device) -> None:
    """The attention of one main block at 1024x1024 (4096 + 96 tokens, 30 heads of 128) on each SDPA
    backend torch offers here: is the default the fastest?"""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(1, 30, 4192, 128, device=device, dtype=torch.bfloat16) for _ in range(3))
    flops = 4 * 4192 * 4192 * 128 * 30
    for name, backend in (("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        try:
            def attend():
                if backend is None:
                    return torch.nn.functional.scaled_dot_product_attention(q, k, v)
                with sdpa_kernel([backend]):
                    return torch.nn.functional.scaled_dot_product_attention(q, k, v)
            for _ in range(3):
                attend()
            sync(device)
            began = time.perf_counter()
            for _ in range(20):
                attend()
            sync(device)
            seconds = (time.perf_counter() - began) / 20
            say(f"sdpa_{name}_ms", round(1000 * seconds, 3), f"ms ({flops / seconds / 1e12:.0f} TFLOP/s)")
        except Exception as exc:
            say(f"sdpa_{name}_ms", f"unavailable ({type(exc).__name__})")


def phase_fp8(args, model_dir: Path | None, device) -> None:
    """In a process of its own: bf16 reference latents, then float8 + compile on the same weights."""
    from diffusers import ZImagePipeline

    width, height = args.size
    spec = RenderSpec(1, PROMPT, SEED, width, height, STEPS)
    if model_dir is not None:
        pipe = ZImagePipeline.from_pretrained(str(model_dir), dtype=torch.bfloat16)
    else:
        pipe = build_pipeline(args)
    reference = Engine.from_pipeline(pipe, device=str(device), compile="off")
    reference.load()
    ref_latents = reference.latents(spec)
    engine = Engine.from_pipeline(pipe, device=str(device), quantize="fp8", compile="auto",
                                  sizes=[tuple(args.size)], compile_cache=args.cache)
    began = time.perf_counter()
    engine.load()
    say("fp8_load_with_warmup_s", round(time.perf_counter() - began, 1), "s")
    say("fp8_warmup_s", round(engine.warmup_s or 0.0, 1), "s")
    torch.cuda.reset_peak_memory_stats(device)
    times, _ = time_render(engine, spec, args.repeats)
    say("fp8_gpu_part_s", median(times), f"s (median of {len(times)}, float8 + compiled)")
    FIGURES["fp8_gpu_part_all_s"] = [round(t, 4) for t in times]
    say("fp8_peak_gpu_memory_gib", gib(torch.cuda.max_memory_allocated(device)), "GiB allocated")
    say("fp8_latent_rel_error_vs_bf16", rel_error(engine.latents(spec), ref_latents),
        "(same noise, eager bf16 reference)")
    lat = []
    for _ in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        engine.latents(spec)
        sync(device)
        lat.append(time.perf_counter() - t)
    say("fp8_latents_only_s", median(lat), "s")
    graphs = compiled_graphs()
    for caption in (caption_lengths()[0], caption_lengths()[5], caption_lengths()[-1]):
        prompt = engine.prompts.prompt_for_caption(caption)
        engine.render(RenderSpec(2, prompt, 7, width, height, 1), lambda *_: None)
    say("fp8_recompiles_while_serving", compiled_graphs() - graphs)


def phase_first_image(args, model_dir: Path, device, started: float) -> None:
    """A fresh process: load the saved pipeline, compile (cache in args.cache), warm up, first image."""
    imported = time.time()
    width, height = args.size
    engine = Engine(str(model_dir), device=str(device), compile="auto", compile_cache=args.cache,
                    sizes=args.sizes)
    engine.load()
    engine.render(RenderSpec(1, PROMPT, SEED, width, height, STEPS), lambda *_: None)
    first = time.time()
    label = args.label
    say(f"{label}_imports_s", round(imported - started, 1),
        "s (process start -> torch, diffusers, zbot imported)")
    say(f"{label}_load_s", round((engine.load_s or 0) - (engine.warmup_s or 0), 1),
        "s (weights from the page cache)")
    say(f"{label}_warmup_s", round(engine.warmup_s or 0, 1), f"s ({len(args.sizes)} sizes)")
    say(f"{label}_first_image_s", round(first - started, 1), "s (process start -> first image)")


def run_child(args, phase: str, extra: list[str], timeout: float) -> dict:
    out = Path(args.work) / f"child-{phase}-{len(FIGURES)}.json"
    command = [sys.executable, __file__, "--child", phase, "--child-out", str(out), "--work", str(args.work),
               "--size", f"{args.size[0]}x{args.size[1]}", "--repeats", str(args.repeats),
               "--started", repr(time.time())] + extra
    if args.tiny:
        command.append("--tiny")
    print(f"[{phase}] {' '.join(command[2:])}", flush=True)
    try:
        subprocess.run(command, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        say(f"{phase}_timed_out_after_s", timeout)
    if out.exists():
        figures = json.loads(out.read_text())
        FIGURES.update(figures)
        return figures
    return {}


def phase_start(args, pipe, device, model_dir: Path) -> None:
    cache = Path(args.work) / "compile-cache"
    shutil.rmtree(cache, ignore_errors=True)
    sizes = ",".join(f"{w}x{h}" for w, h in args.sizes)
    cold = run_child(args, "first_image", ["--model-dir", str(model_dir), "--cache", str(cache),
                                           "--label", "cold", "--sizes", sizes], args.child_timeout)
    warm = run_child(args, "first_image", ["--model-dir", str(model_dir), "--cache", str(cache),
                                           "--label", "warm", "--sizes", sizes], args.child_timeout)
    if cold.get("cold_warmup_s") and warm.get("warm_warmup_s"):
        say("warm_over_cold_warmup", round(warm["warm_warmup_s"] / cold["cold_warmup_s"], 3))


def save_pipeline(pipe, folder: Path) -> Path:
    if (folder / "model_index.json").exists():
        return folder
    began = time.perf_counter()
    pipe.save_pretrained(str(folder), safe_serialization=True)
    say("saved_pipeline_s", round(time.perf_counter() - began, 1), f"s ({folder})")
    return folder


# -- main ----------------------------------------------------------------------------------------


def card_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} x{torch.get_num_threads()} threads"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="eager,main,offload")
    parser.add_argument("--tiny", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--size", type=parse_size, default=None, help="WIDTHxHEIGHT (default 1024x1024)")
    parser.add_argument("--sizes", default=None,
                        help="sizes to warm up, comma-separated (default: the bot's 5)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    parser.add_argument("--work", default=None, help="scratch folder (saved weights, compile caches)")
    parser.add_argument("--cache", type=Path, default=None, help="compile cache for the main/fp8 phases")
    parser.add_argument("--child-timeout", type=float, default=420)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--label", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "urllib3", "torch", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    args.size = args.size or ((256, 256) if args.tiny else (1024, 1024))
    if args.sizes:
        args.sizes = [parse_size(s) for s in args.sizes.split(",")]
    else:
        args.sizes = [tuple(args.size)] if args.tiny else BOT_SIZES
    args.repeats = args.repeats or (3 if args.tiny else 7)
    args.work = args.work or tempfile.mkdtemp(prefix="zbot-bench-")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.tiny:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda":
        assert torch.cuda.is_available(), "no CUDA GPU here; use --tiny on a CPU"

    if args.child:  # a phase in a process of its own
        model_dir = Path(args.model_dir) if args.model_dir else None
        if args.child == "fp8":
            phase_fp8(args, model_dir, device)
        elif args.child == "first_image":
            phase_first_image(args, model_dir, device, args.started or PROCESS_START)
        Path(args.child_out).write_text(json.dumps(FIGURES))
        return

    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    say("card", card_name(device))
    say("torch", torch.__version__)
    import diffusers

    say("diffusers", diffusers.__version__)
    began = time.perf_counter()
    pipe = build_pipeline(args)
    say("build_pipeline_s", round(time.perf_counter() - began, 1), "s")
    FIGURES["size"] = f"{args.size[0]}x{args.size[1]}"
    FIGURES["steps"] = STEPS
    model_dir = None
    for phase in phases:
        print(f"== {phase}", flush=True)
        began = time.perf_counter()
        if phase == "eager":
            phase_eager(args, pipe, device)
        elif phase == "main":
            phase_main(args, pipe, device)
        elif phase == "offload":
            phase_offload(args, pipe, device)
        elif phase == "refine":
            phase_refine(args, pipe, device)
        elif phase == "sdpa":
            phase_sdpa(device)
        elif phase == "fp8" and device.type == "cuda":
            if pipe is not None:  # the child builds its own copy; free this one's GPU memory
                del pipe
                pipe = None
                gc.collect()
                torch.cuda.empty_cache()
            run_child(args, "fp8", ["--cache", str(args.cache)] if args.cache else [], args.child_timeout)
        elif phase in ("fp8", "start"):
            model_dir = model_dir or save_pipeline(pipe, Path(args.work) / "model")
            if pipe is not None:  # the children load their own copy; free this one's GPU memory
                del pipe
                pipe = None
                FIGURES.pop("_engine", None)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            if phase == "fp8" and device.type != "cuda":
                say("fp8_skipped", "float8 needs a GPU")
            elif phase == "fp8":
                extra = ["--model-dir", str(model_dir)] + (["--cache", str(args.cache)] if args.cache else [])
                run_child(args, "fp8", extra, args.child_timeout)
            else:
                phase_start(args, pipe, device, model_dir)
        else:
            raise SystemExit(f"unknown phase {phase!r}")
        say(f"phase_{phase}_s", round(time.perf_counter() - began, 1), "s")

    FIGURES.pop("_engine", None)
    FIGURES["phases"] = phases
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"gpu-{slug(FIGURES['card'])}-{'-'.join(phases)}.json"
    (out / name).write_text(json.dumps(FIGURES, indent=1) + "\n")
    print(json.dumps(FIGURES), flush=True)


if __name__ == "__main__":
    main()
