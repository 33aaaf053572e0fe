"""Issue 28 on a GPU: image to image from an upload (strength 0.7), Zoom out 2x and Pan right, through the
engine, each against plain diffusers' pipeline of the same kind on the same modules in the same run;
full-size random weights (bench/gpu_common.py). Median of --repeats, peak GPU memory of each beside a
draw at the same size, graphs compiled while serving, how close the kept part came back. One JSON line last.

    python bench/gpu_reframe.py                 # H100/H200: 1024x1024, Pan right to 1536x1024
    python bench/gpu_reframe.py --tiny          # the tiny model on the CPU (checks the script runs)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from gpu_common import (
    FIGURES,
    PROMPT,
    SEED,
    STEPS,
    build_pipeline,
    card_name,
    gib,
    median,
    parse_size,
    photo_like,
    say,
    slug,
    sync,
    timed,
)

from zbot.core import reframe, uploads
from zbot.core.jobs import RenderSpec, Source, panned_size
from zbot.engine.acceleration import compiled_graphs
from zbot.engine.engine import Engine
from zbot.engine.inpaint import sibling

STRENGTH = 0.7  # the upload's image to image, as the issue asks


def peak(device: torch.device) -> float | None:
    return gib(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def measure(name: str, call, repeats: int, device: torch.device, what: str):
    call()  # the first call pays for cuBLAS's choices (and, in the engine, nothing else: warmed up)
    reset_peak(device)
    times, result = timed(call, repeats, device)
    say(f"{name}_s", median(times), f"s (median of {repeats}, {what})")
    FIGURES[f"{name}_all_s"] = [round(t, 4) for t in times]
    if device.type == "cuda":
        say(f"{name}_peak_gib", peak(device), "GiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--size", type=parse_size, default=None, help="WIDTHxHEIGHT (default 1024x1024)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="torch.compile cache folder")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    args.size = args.size or ((128, 128) if args.tiny else (1024, 1024))
    args.repeats = args.repeats or (2 if args.tiny else 5)
    args.work = tempfile.mkdtemp(prefix="zbot-reframe-")
    device = torch.device("cpu" if args.tiny else "cuda")
    if args.tiny:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    else:
        assert torch.cuda.is_available(), "no CUDA GPU here; use --tiny on a CPU"
    card = card_name(device)
    say("card", card)
    say("torch", torch.__version__)
    width, height = args.size
    wide = panned_size(width, height, "right")
    say("sizes", {"image": f"{width}x{height}", "pan_right": f"{wide[0]}x{wide[1]}"})
    began = time.perf_counter()
    pipe = build_pipeline(argparse.Namespace(tiny=args.tiny, work=args.work))
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    say("build_s", round(time.perf_counter() - began, 1))

    # What a member uploads: a photo-like JPEG, decoded and checked as the bot will (zbot.core.uploads).
    photo, kind = photo_like(width, height)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=92)
    upload = buffer.getvalue()
    say("upload", f"{kind} JPEG, {len(upload) // 1024} kB")
    source = uploads.decode(upload)
    zoom, pan = reframe.zoom_out(source, 2.0), reframe.pan(source, "right")
    assert pan is not None and pan.size == wide

    # Plain diffusers first, eagerly, before the engine compiles the shared modules (its docs' way:
    # prompt in, the pipeline's own text encoding at 512 tokens, guidance 0 and the bot's steps).
    from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

    plain_img2img = ZImageImg2ImgPipeline(**pipe.components)
    plain_inpaint = ZImageInpaintPipeline(**pipe.components)
    for plain in (plain_img2img, plain_inpaint):
        plain.set_progress_bar_config(disable=True)

    def generator():
        return torch.Generator(device).manual_seed(SEED)

    common = dict(prompt=PROMPT, num_inference_steps=STEPS, guidance_scale=0.0)
    measure("baseline_diffusers_draw", lambda: pipe(height=height, width=width, generator=generator(),
                                                    **common).images[0], args.repeats, device,
            f"plain ZImagePipeline {width}x{height}")
    measure("baseline_diffusers_upload_img2img", lambda: plain_img2img(
        image=uploads.decode(upload), strength=STRENGTH, height=height, width=width, generator=generator(),
        **common).images[0], args.repeats, device, f"plain ZImageImg2ImgPipeline {width}x{height}, upload decoded")
    for name, frame in (("zoom_out_2x", zoom), ("pan_right", pan)):
        w, h = frame.size
        measure(f"baseline_diffusers_{name}", lambda frame=frame, w=w, h=h: plain_inpaint(
            image=frame.canvas, mask_image=frame.mask, strength=1.0, height=h, width=w, generator=generator(),
            **common).images[0], args.repeats, device, f"plain ZImageInpaintPipeline {w}x{h}")

    engine = Engine.from_pipeline(pipe, device=str(device), compile="off" if args.tiny else "auto",
                                  sizes=[(width, height)], compile_cache=args.cache)
    began = time.perf_counter()
    engine.load()
    engine.warm_up()  # everything the idle bot warms: the upscale sizes, inpainting and each Pan size
    say("engine_load_and_warmup_s", round(time.perf_counter() - began, 1), f"s (compiled={engine.compiled})")
    graphs = compiled_graphs()
    say("engine_graphs_after_warmup", graphs, "graphs compiled by the load and the warm-up")
    say("engine_warmed_sizes", sorted(f"{w}x{h}" for w, h in engine.warmed_sizes))
    sync(device)

    def draw(w: int, h: int):
        return engine.render(RenderSpec(1, PROMPT, SEED, w, h, STEPS), lambda done, total: None)

    def from_upload():
        png = uploads.upload_png(upload)  # bytes in: decoded, checked and re-encoded, as the bot keeps it
        spec = RenderSpec(1, PROMPT, SEED, width, height, STEPS, source=Source(png=png), strength=STRENGTH)
        return engine.render(spec, lambda done, total: None)

    def reframed(frame: reframe.Frame):
        painted = engine.render_inpaint(PROMPT, SEED, *frame.size, STEPS, frame.canvas, frame.mask)
        return painted, reframe.finish(painted, frame)

    measure("engine_draw", lambda: draw(width, height), args.repeats, device, f"zbot engine draw {width}x{height}")
    measure("engine_draw_wide", lambda: draw(*wide), args.repeats, device, f"zbot engine draw {wide[0]}x{wide[1]}")
    measure("engine_upload_img2img", from_upload, args.repeats, device,
            f"zbot engine, upload bytes in -> {width}x{height} image out, strength {STRENGTH}")
    for name, frame in (("zoom_out_2x", zoom), ("pan_right", pan)):
        painted, done = measure(f"engine_{name}", lambda frame=frame: reframed(frame), args.repeats, device,
                                f"zbot engine inpaint + re-paste {frame.size[0]}x{frame.size[1]}")
        kept = reframe.difference(painted, frame, frame.inner)
        say(f"{name}_kept_by_pipeline", {"max": kept.max, "mean": kept.mean},
            "levels of 255 (the kept part re-encoded by the VAE; random weights: an upper bound)")
        after = reframe.difference(done, frame, frame.inner)
        say(f"{name}_kept_after_repaste", {"max": after.max, "mean": after.mean}, "levels of 255")
    for name in ("upload_img2img", "zoom_out_2x", "pan_right"):
        say(f"{name}_speedup", round(FIGURES[f"baseline_diffusers_{name}_s"] / FIGURES[f"engine_{name}_s"], 2), "x")
    if device.type == "cuda":
        say("peak_no_higher_than_a_draw", {
            "upload_img2img": FIGURES["engine_upload_img2img_peak_gib"] <= FIGURES["engine_draw_peak_gib"],
            "zoom_out_2x": FIGURES["engine_zoom_out_2x_peak_gib"] <= FIGURES["engine_draw_peak_gib"],
            "pan_right": FIGURES["engine_pan_right_peak_gib"] <= FIGURES["engine_draw_wide_peak_gib"]})
    say("graphs_compiled_while_serving", compiled_graphs() - graphs)
    say("engine_recompiles", engine.recompiles)
    shares = sibling(pipe, type(engine._inpaint_pipeline()))
    say("inpaint_shares_modules", all(getattr(shares, n) is m for n, m in pipe.components.items() if n != "scheduler"))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"gpu-{slug(card)}-reframe" if device.type == "cuda" else "gpu-cpu-tiny-reframe"
    (out / f"{name}.json").write_text(json.dumps(FIGURES, indent=1) + "\n")
    print(json.dumps(FIGURES), flush=True)


if __name__ == "__main__":
    main()
