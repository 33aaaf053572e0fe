"""The GPU benchmark's start phase: fresh processes started as the bot starts, cold, warm, from torch's
portable cache file, with the weights copied through CPU memory, and with one VAE graph per size."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
from gpu_common import FIGURES, PROMPT, SEED, STEPS, median, run_child, say, sync

from zbot.core.jobs import RenderSpec
from zbot.engine.acceleration import compiled_graphs
from zbot.engine.engine import Engine


def phase_first_image(args, model_dir: Path, device, started: float) -> None:
    """A fresh process, as the bot starts: load the saved pipeline, compile (cache in args.cache, or
    from a cache-artifacts file), draw the first image; then a request at another size before the
    warm-up reached it, then the rest of the warm-up as the idle bot does it."""
    from diffusers import ZImageImg2ImgPipeline, ZImagePipeline  # noqa: F401
    from torch._dynamo.utils import counters
    from transformers import Qwen3Model  # noqa: F401

    # The engine imports the pipeline's classes as it loads (as the bot does); here before the clock
    # splits, so that "weights" is the weights and "imports" all of the imports.
    imported = time.time()
    label = args.label
    if args.artifacts:  # torch's portable compile cache, into an empty cache folder
        began = time.perf_counter()
        from zbot.engine.acceleration import use_compile_cache

        use_compile_cache(args.cache)
        torch.compiler.load_cache_artifacts(Path(args.artifacts).read_bytes())
        say(f"{label}_load_cache_artifacts_s", round(time.perf_counter() - began, 2), "s")
    if args.copy_load:
        Engine.load_straight = False
    if args.vae_static:
        Engine.vae_dynamic = False
    width, height = args.size
    engine = Engine(str(model_dir), device=str(device), compile="auto", compile_cache=args.cache,
                    sizes=args.sizes)
    engine.load()
    ready = time.time()
    engine.render(RenderSpec(1, PROMPT, SEED, width, height, STEPS), lambda *_: None)
    first = time.time()
    say(f"{label}_ready_s", round(ready - started, 2), "s (process start -> ready to draw)")
    say(f"{label}_imports_s", round(imported - started, 1),
        "s (process start -> torch, diffusers, zbot imported)")
    for name, value in engine.timings.items():
        say(f"{label}_{name}", round(value, 2), "s")
    say(f"{label}_first_image_s", round(first - started, 2), "s (process start -> first image)")
    say(f"{label}_engine_to_first_image_s", round(first - imported, 2),
        "s (imports done -> first image: the engine's part)")
    if args.copy_load:
        return
    other = [size for size in args.sizes if size not in engine.warmed_sizes]
    if other:  # a request for a size the warm-up has not reached: served at once, nothing compiled
        graphs = compiled_graphs()
        w, h = other[0]
        began = time.perf_counter()
        engine.render(RenderSpec(2, PROMPT, SEED, w, h, STEPS), lambda *_: None)
        sync(device)
        say(f"{label}_unwarmed_size_render_s", round(time.perf_counter() - began, 3), f"s ({w}x{h}, before "
            f"its warm-up)")
        say(f"{label}_unwarmed_size_graphs_built", compiled_graphs() - graphs)
    engine.warm_up()
    say(f"{label}_all_sizes_ready_s", round(time.time() - started, 1),
        f"s (process start -> every size and upscale warmed, {len(engine.warmed_sizes)} sizes)")
    say(f"{label}_compiled_graphs", compiled_graphs())
    say(f"{label}_fx_graph_cache_misses", int(counters["inductor"]["fxgraph_cache_miss"]),
        "(0: nothing compiled again)")
    say(f"{label}_fx_graph_cache_hits", int(counters["inductor"]["fxgraph_cache_hit"]))
    graphs = compiled_graphs()
    for w, h in args.sizes:  # every size served after the warm-up: no graph built
        engine.render(RenderSpec(3, PROMPT, SEED, w, h, 2), lambda *_: None)
    say(f"{label}_recompiles_serving_all_sizes", compiled_graphs() - graphs + engine.recompiles)
    times = []
    for repeat in range(3):  # served once warm: the ahead-of-time code as fast as the just-in-time?
        began = time.perf_counter()
        engine.render(RenderSpec(4 + repeat, PROMPT, SEED, width, height, STEPS), lambda *_: None)
        sync(device)
        times.append(time.perf_counter() - began)
    say(f"{label}_served_render_s", round(median(times), 3), f"s (median of 3, {width}x{height}, {STEPS} steps)")
    if engine.ahead is not None:
        say(f"{label}_ahead_loaded", int(engine.ahead.loaded), "(1: the image blocks' code came ahead of time)")
        say(f"{label}_ahead_misfits", sum(call.misfits for call in engine.ahead.calls),
            "(calls its guards refused: 0)")
        if engine.ahead.read_s is not None:
            say(f"{label}_ahead_read_s", round(engine.ahead.read_s, 2), "s (on its thread, beside the weights)")
        say(f"{label}_ahead_saved", int(engine.ahead.path.exists()))
        if engine.ahead.failed_marker.exists():
            say(f"{label}_ahead_failed", engine.ahead.failed_marker.read_text().strip()[:300])
    if args.save_artifacts:
        began = time.perf_counter()
        saved = torch.compiler.save_cache_artifacts()
        if saved is not None:
            Path(args.save_artifacts).write_bytes(saved[0])
            say("cache_artifacts_mb", round(len(saved[0]) / 1e6, 1), "MB")
        say("save_cache_artifacts_s", round(time.perf_counter() - began, 2), "s")


def phase_start(args, pipe, device, model_dir: Path) -> None:
    """Cold (no compile cache) once, warm (the cache it left) --warm-starts times, from a cache-artifacts
    file into an empty cache once, and with the weights copied through CPU memory (the old load) once."""
    cache = Path(args.work) / "compile-cache"
    shutil.rmtree(cache, ignore_errors=True)
    artifacts = Path(args.work) / "cache-artifacts.bin"
    sizes = ",".join(f"{w}x{h}" for w, h in args.sizes)
    common = ["--model-dir", str(model_dir), "--sizes", sizes]
    site = clean_site(Path(args.work)) if args.clean_env else None
    if args.compare_static_vae:  # first, one VAE graph per size instead of one for all: cold, then warm
        static = Path(args.work) / "compile-cache-static-vae"
        shutil.rmtree(static, ignore_errors=True)
        for label in ("staticvae_cold", "staticvae_warm"):
            run_child(args, "first_image",
                      common + ["--cache", str(static), "--label", label, "--vae-static"],
                      args.child_timeout, site=site)
    cold = run_child(args, "first_image", common + ["--cache", str(cache), "--label", "cold",
                                                    "--save-artifacts", str(artifacts)],
                     args.child_timeout, site=site)
    warm = []
    for index in range(args.warm_starts):
        label = f"warm{index}"
        warm.append(run_child(args, "first_image", common + ["--cache", str(cache), "--label", label],
                              args.child_timeout, site=site))
    for key in ("first_image_s", "engine_to_first_image_s", "all_sizes_ready_s", "weights_s", "setup_s",
                "ahead_load_s", "first_warmup_s", "imports_s"):
        values = [w[f"warm{i}_{key}"] for i, w in enumerate(warm) if f"warm{i}_{key}" in w]
        if values:
            say(f"warm_{key}", median(values), f"s (median of {len(values)} warm starts)")
            FIGURES[f"warm_{key}_all"] = values
    if cold.get("cold_first_image_s") and warm:
        ratio = FIGURES["warm_first_image_s"] / cold["cold_first_image_s"]
        say("warm_over_cold_first_image", round(ratio, 3))
    if artifacts.exists() and not args.no_extras:
        empty = Path(args.work) / "compile-cache-from-artifacts"
        shutil.rmtree(empty, ignore_errors=True)
        run_child(args, "first_image", common + ["--cache", str(empty), "--label", "artifacts",
                                                 "--artifacts", str(artifacts)],
                  args.child_timeout, site=site)
    if not args.no_extras:
        run_child(args, "first_image", common + ["--cache", str(cache), "--label", "copyload", "--copy-load"],
                  args.child_timeout, site=site)


def clean_site(work: Path) -> Path:
    """The installed packages zbot's dependencies need, linked into one folder (bench/clean_env.py)."""
    from importlib import metadata

    from clean_env import canonical, clean_site_packages, requirement_closure, zbot_requirements

    keep = requirement_closure(zbot_requirements())
    folder = work / "clean-site"
    shutil.rmtree(folder, ignore_errors=True)
    clean_site_packages(folder, keep)
    installed = {canonical(dist.metadata["Name"] or "") for dist in metadata.distributions()}
    say("clean_env_distributions", len(keep),
        f"of {len(installed)} installed (the rest hidden from the starts)")
    return folder


def save_pipeline(pipe, folder: Path) -> Path:
    if (folder / "model_index.json").exists():
        return folder
    # The engine fuses projections in place: such weights no longer load as a ZImagePipeline.
    assert not getattr(pipe, "_zbot_fused", False), "run the start phase before main, or in a call of its own"
    began = time.perf_counter()
    pipe.save_pretrained(str(folder), safe_serialization=True)
    say("saved_pipeline_s", round(time.perf_counter() - began, 1), f"s ({folder})")
    return folder
