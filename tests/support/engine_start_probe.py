"""Run as a script by tests/test_engine_start.py: the engine on the tiny model, compiled on the CPU with a
compile-cache folder, started as the bot starts it. Prints one JSON line of what it saw.

    python tests/engine_start_probe.py MODEL_DIR CACHE_DIR
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

started = time.perf_counter()

import torch  # noqa: E402
from torch._dynamo.utils import compilation_time_metrics, counters  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zbot.core.jobs import RenderSpec  # noqa: E402
from zbot.engine.acceleration import compiled_graphs  # noqa: E402
from zbot.engine.engine import Engine  # noqa: E402


def misfit_served(engine: Engine) -> bool:
    """A call the saved code's guards refuse (two images at once: it was compiled for one) runs the
    just-in-time way instead (here eagerly, so nothing compiles), with the same result per image."""
    call = engine.ahead.calls[0]
    call.keep_next = True  # the arguments of the block's next real call
    engine.render(RenderSpec(4, "a red fox", 3, 64, 64, 1), lambda *_: None)
    args, kwargs = call.example
    call.example = None
    doubled = tuple(torch.cat([arg, arg]) if isinstance(arg, torch.Tensor) else arg for arg in args)
    misfits = call.misfits
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("zbot.engine.ahead").addHandler(handler)
    try:
        with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
            one, two = call.block(*args, **kwargs), call.block(*doubled, **kwargs)
    finally:
        logging.getLogger("zbot.engine.ahead").removeHandler(handler)
    same = all(torch.allclose(half, one, atol=1e-5) for half in two.split(1))
    # the log names the guard that refused it, so a misfit seen in production says why
    told = any("refused by:" in text and "expected" in text for text in warnings)
    return call.misfits == misfits + 1 and same and told


def main() -> None:
    model, cache = sys.argv[1], Path(sys.argv[2])
    # oneDNN's choice of convolution on the CPU depends on the input's size, so Inductor guards the VAE
    # decoder on it and compiles it again for the upscale and Pan sizes (two graphs, 20 s of this test).
    # CUDA's choice doesn't: without oneDNN the CPU keeps one decoder graph for every size, as the GPU does.
    torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    engine = Engine(model, device="cpu", compile="on", compile_cache=cache, sizes=[(64, 64)])
    engine.load()
    first = engine.render(RenderSpec(0, "a red fox in the snow", 7, 64, 64, 2), lambda *_: None)
    first.save(cache / f"first-{os.getpid()}.png")  # to compare across starts
    seen: dict = {"first_image": str(cache / f"first-{os.getpid()}.png"), "warmed_after_load": sorted(engine.warmed_sizes), "graphs_after_load": compiled_graphs(),
                  "pending_after_load": [what for what, _ in engine.pending_warmups],
                  "timings": engine.timings}
    # A request at a size the warm-up has not reached: its VAE graph doesn't fit, it must not compile.
    graphs = compiled_graphs()
    image = engine.render(RenderSpec(1, "a red fox", 3, 128, 128, 2), lambda *_: None)
    seen["unwarmed_size"] = list(image.size)
    seen["unwarmed_graphs_built"] = compiled_graphs() - graphs
    graphs = compiled_graphs()
    while engine.warm_up_next():
        pass
    seen["warm_up_graphs_built"] = compiled_graphs() - graphs
    seen["warmed_in_the_end"] = sorted(engine.warmed_sizes)
    graphs = compiled_graphs()
    for width, height in ((64, 64), (128, 128), (96, 64)):  # a size, its upscale, a Pan
        engine.render(RenderSpec(2, "a red fox", 3, width, height, 2), lambda *_: None)
    seen["serving_graphs_built"] = compiled_graphs() - graphs
    seen["recompiles"] = engine.recompiles
    seen["ready_all_s"] = engine.ready_all_s
    seen["fx_graph_cache_misses"] = int(counters["inductor"]["fxgraph_cache_miss"])
    seen["fx_graph_cache_hits"] = int(counters["inductor"]["fxgraph_cache_hit"])
    # Tracing that restarts (a float specialised late) shows as a second attempt: every graph traced twice.
    seen["trace_restarts"] = sum(len(times) for name, times in compilation_time_metrics.items()
                                 if name.startswith("compile_attempt_") and name != "compile_attempt_0")
    seen["ahead_loaded"] = engine.ahead is not None and engine.ahead.loaded
    seen["ahead_saved"] = engine.ahead is not None and engine.ahead.path.exists()
    seen["ahead_misfits"] = sum(call.misfits for call in engine.ahead.calls) if engine.ahead else None
    if engine.ahead is not None and engine.ahead.loaded:
        seen["misfit_served"] = misfit_served(engine)
    seen["process_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
