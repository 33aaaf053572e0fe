"""The refine phase of bench/gpu_bench.py: Vary and Upscale through the engine against plain diffusers'
img2img on the same card. In a process where nothing was compiled yet (`--phases refine`)."""

from __future__ import annotations

import time

import torch
from gpu_common import FIGURES, PROMPT, SEED, STEPS, gib, median, photo_like, say, sync, time_render

from zbot.core.imaging import encode_png
from zbot.core.jobs import RenderSpec
from zbot.engine.engine import Engine


def phase_refine(args, pipe, device) -> None:
    """Vary (img2img at the image's size, ZBOT_VARY_STRENGTH) and Upscale (img2img of the image enlarged
    2x per side, ZBOT_UPSCALE_STRENGTH) through the engine, against plain diffusers' ZImageImg2ImgPipeline
    on the same modules (eager, as its docs call it, with the bot's steps and guidance 0). Run it in a
    process where no other phase compiled the pipeline first: the baseline must be eager."""
    from diffusers import ZImageImg2ImgPipeline
    from PIL import Image

    from zbot.config import Settings
    from zbot.core.jobs import Source, denoising_steps, upscaled_size

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
    engine.warm_up()  # the VAE decoder, the other sizes and the upscale sizes, as the idle bot does
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
