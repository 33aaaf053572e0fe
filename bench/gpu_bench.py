"""Z-Image-Turbo on one GPU through zbot's own engine, against plain diffusers on the same card.

Full-size components with random weights (the real configs: 6.2 B transformer, Qwen3-4B text encoder,
FLUX-layout VAE), built on the GPU in bf16 and handed to `zbot.engine.engine.Engine`, so every figure is the
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
  start    the pipeline saved to local disk (so the weights sit in the page cache), then fresh
           processes as the bot starts: process start -> first image and -> every size warmed, cold
           (empty compile cache), warm (--warm-starts times), from torch's cache-artifacts file into an
           empty cache, and with the weights copied through CPU memory (the old load) for comparison
           (bench/gpu_start.py; before main or in a call of its own: main changes the weights in place).
           --clean-env: those processes see only the installed packages zbot's dependencies need
           (bench/clean_env.py), not the rest of the machine's image, as a zbot install would.
Prints each figure as soon as it is known, then one JSON line with all of them, and writes that JSON to
--out (default: $OUT if set, else bench/results) as gpu-<card>-<phases>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

PROCESS_START = time.time()  # before the heavy imports: "process start" for the start phase

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu_common import (  # noqa: E402
    BOT_SIZES,
    FIGURES,
    PROMPT,
    SEED,
    STEPS,
    build_pipeline,
    card_name,
    gib,
    median,
    parse_size,
    rel_error,
    run_child,
    say,
    slug,
    sync,
    time_render,
    timed,
)
from gpu_refine import phase_refine  # noqa: E402
from gpu_serving import phase_encode, profile_render, queue_run  # noqa: E402
from gpu_start import phase_first_image, phase_start, save_pipeline  # noqa: E402

from zbot.core.jobs import RenderSpec  # noqa: E402
from zbot.engine.acceleration import compiled_graphs  # noqa: E402
from zbot.engine.engine import Engine  # noqa: E402
from zbot.engine.prompts import caption_length, caption_lengths  # noqa: E402

# -- phases --------------------------------------------------------------------------------------


def phase_eager(args, pipe, device) -> None:
    """Plain diffusers: the pipeline called as its docs show, eager, 8 steps, no guidance."""
    pipe.set_progress_bar_config(disable=True)
    width, height = args.size

    def draw():
        return pipe(prompt=PROMPT, height=height, width=width, num_inference_steps=STEPS, guidance_scale=0.0,
                    generator=torch.Generator(device).manual_seed(SEED)).images[0]

    draw()
    times, _ = timed(draw, args.repeats, device)
    say("baseline_eager_diffusers_s", median(times), "s (median, plain diffusers eager)")
    FIGURES["baseline_eager_diffusers_all_s"] = [round(t, 4) for t in times]
    # Its text encoder step alone (512 padded tokens) for the breakdown.
    te, _ = timed(lambda: pipe._encode_prompt([PROMPT], device=device), args.repeats, device)
    say("baseline_text_encoder_512_s", median(te), "s")


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
    say("first_size_warmup_s", round(engine.warmup_s or 0.0, 1), f"s (compiled={engine.compiled}, "
        f"{width}x{height}: ready to serve)")
    rest = time.perf_counter()
    engine.warm_up()
    say("rest_warmup_s", round(time.perf_counter() - rest, 1), f"s (the {len(sizes) - 1} other sizes, "
        f"{len(engine.upscale_sizes)} upscale sizes, text encoder graphs: done while idle in the bot)")
    setup = (engine.load_s or 0.0) - (engine.warmup_s or 0.0)
    say("warmup_s", round(time.perf_counter() - began - setup, 1), "s (all of it)")
    tokens = engine.prompts.token_count(PROMPT)
    say("prompt_tokens", tokens)
    say("prompt_caption_tokens", caption_length(tokens))
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
    te, _ = timed(lambda: engine.prompts.encode(PROMPT), args.repeats, device)
    lat, _ = timed(lambda: engine.latents(spec), args.repeats, device)
    say("text_encoder_bucketed_s", median(te), f"s (padded to {engine.prompts.tokenize(PROMPT)[0].shape[1]})")
    say("text_encoder_cuda_graphs", engine.prompts.graphed)
    say("latents_only_s", median(lat), "s (text encoder + transformer steps)")
    say("vae_and_pixels_s", round(median(times) - median(lat), 4), "s (GPU part - latents only)")
    vae = engine.pipe.vae
    with torch.inference_mode():  # as in the engine: tensors made outside it would need other graphs
        latents = (engine.latents(spec).to(vae.dtype) / vae.config.scaling_factor) + vae.config.shift_factor
        dec, _ = timed(lambda: vae.decode(latents, return_dict=False), args.repeats, device)
    say("vae_decode_s", median(dec), "s (one graph for every size: dynamic height and width)")
    if engine.compiled:  # against a graph for this size only, and eager
        static = torch.compile(vae.decoder.forward, dynamic=False, fullgraph=True)
        with torch.inference_mode():
            for label, decode in (("static", static), ("eager", vae.decoder.forward), ("dynamic", vae.decoder)):
                decode(latents)  # a first call compiles
                decoder_times, _ = timed(lambda: decode(latents), args.repeats, device)
                say(f"vae_decoder_{label}_s", median(decoder_times), "s (decoder only)")
        engine._settle_graphs()  # the static graph above is the benchmark's, not a recompile
    profile_render(engine, spec, device, "bf16")

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
    engine.warm_up()  # what the idle bot compiles after the first image (the VAE decoder among it)
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
    engine.warm_up()
    say("fp8_load_with_warmup_s", round(time.perf_counter() - began, 1), "s")
    say("fp8_warmup_s", round(engine.warmup_s or 0.0, 1), "s")
    torch.cuda.reset_peak_memory_stats(device)
    times, _ = time_render(engine, spec, args.repeats)
    say("fp8_gpu_part_s", median(times), f"s (median of {len(times)}, float8 + compiled)")
    FIGURES["fp8_gpu_part_all_s"] = [round(t, 4) for t in times]
    say("fp8_peak_gpu_memory_gib", gib(torch.cuda.max_memory_allocated(device)), "GiB allocated")
    say("fp8_latent_rel_error_vs_bf16", rel_error(engine.latents(spec), ref_latents),
        "(same noise, eager bf16 reference)")
    lat, _ = timed(lambda: engine.latents(spec), args.repeats, device)
    say("fp8_latents_only_s", median(lat), "s")
    graphs = compiled_graphs()
    for caption in (caption_lengths()[0], caption_lengths()[5], caption_lengths()[-1]):
        prompt = engine.prompts.prompt_for_caption(caption)
        engine.render(RenderSpec(2, prompt, 7, width, height, 1), lambda *_: None)
    say("fp8_recompiles_while_serving", compiled_graphs() - graphs)
    profile_render(engine, spec, device, "fp8")
    asyncio.run(queue_run(engine, args.jobs, width, height, prefix="fp8_"))


# -- main ----------------------------------------------------------------------------------------


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
    parser.add_argument("--warm-starts", type=int, default=5, help="warm starts in the start phase")
    parser.add_argument("--compare-static-vae", action="store_true",
                        help="start phase: also a cold and a warm start with one VAE graph per size")
    parser.add_argument("--artifacts", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--save-artifacts", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--copy-load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--vae-static", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-extras", action="store_true",
                        help="start phase: skip the cache-artifacts and copied-weights starts")
    parser.add_argument("--started", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--clean-env", action="store_true",
                        help="start phase: the fresh processes see only the installed packages zbot's "
                             "dependencies need (bench/clean_env.py), as a zbot install would")
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
