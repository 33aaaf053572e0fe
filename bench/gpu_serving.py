"""What the GPU benchmark measures around the render: PNG encoding, a kernel profile, and a queue of jobs
through the real Executor (images/s, GPU idle between jobs, the event loop's lag)."""

from __future__ import annotations

import asyncio
import statistics
import time

from gpu_common import FIGURES, PROMPT, SEED, STEPS, median, pct, photo_like, say, sync

from zbot.core.executor import Executor
from zbot.core.imaging import PNG_BACKEND, encode_png
from zbot.core.jobs import RenderSpec
from zbot.engine.engine import Engine


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
        say(f"encode_png_{label}_s", s, f"s, {n / 1e6:.2f} MB (zbot.core.imaging)")
        FIGURES[f"encode_png_{label}_mb"] = round(n / 1e6, 3)
        s, n = time_it(pillow(img, format="PNG", compress_level=1))
        say(f"encode_pillow_png1_{label}_s", s, f"s, {n / 1e6:.2f} MB")
        s, n = time_it(pillow(img, format="PNG"))
        say(f"encode_pillow_png6_{label}_s", s, f"s, {n / 1e6:.2f} MB")
        s, n = time_it(pillow(img, format="JPEG", quality=95))
        say(f"encode_jpeg95_{label}_s", s, f"s, {n / 1e6:.2f} MB (lossy, for reference)")
    FIGURES["encode_photo_kind"] = kind


def profile_render(engine: Engine, spec: RenderSpec, device, label: str, top: int = 12) -> None:
    """Where one render's GPU time goes: the kernels with the most CUDA time (torch.profiler)."""
    if device.type != "cuda":
        return
    from torch.profiler import ProfilerActivity, profile

    engine.render(spec, lambda *_: None)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        engine.render(spec, lambda *_: None)
        sync(device)
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.self_device_time_total for e in events) or 1
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    rows = []
    print(f"-- profile ({label}): GPU kernel time {total / 1e3:.1f} ms per render, top {top}")
    for event in events[:top]:
        share = event.self_device_time_total / total
        ms = event.self_device_time_total / 1e3
        rows.append([event.key[:90], round(ms, 2), event.count, round(share, 4)])
        print(f"{ms:9.2f} ms {100 * share:5.1f}% x{event.count:<5} {event.key[:90]}")
    FIGURES[f"profile_{label}_kernel_ms"] = round(total / 1e3, 2)
    FIGURES[f"profile_{label}_top"] = rows


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


async def queue_run(engine: Engine, jobs: int, width: int, height: int, prefix: str = "") -> None:
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
    say(prefix + "queue_jobs", jobs)
    say(prefix + "queue_images_per_s", round(jobs / wall, 3), "images/s")
    say(prefix + "queue_wall_s", round(wall, 2), "s")
    say(prefix + "queue_render_median_s", median(renders), "s")
    say(prefix + "gpu_idle_between_jobs_median_ms", round(1000 * median(gaps), 2), "ms")
    say(prefix + "gpu_idle_between_jobs_max_ms", round(1000 * max(gaps), 2), "ms")
    say(prefix + "queue_overhead_per_job_ms", round(1000 * (wall / jobs - statistics.mean(renders)), 2),
        "ms (wall / jobs - mean render)")
    say(prefix + "encode_after_render_median_ms", round(1000 * median(after_render), 2),
        "ms (render end -> result on the loop, encoding overlapped with the next render)")
    say(prefix + "loop_lag_p50_ms", round(1000 * pct(lags, 0.50), 2), "ms")
    say(prefix + "loop_lag_p99_ms", round(1000 * pct(lags, 0.99), 2), "ms")
    say(prefix + "loop_lag_max_ms", round(1000 * max(lags), 2), "ms")
    FIGURES[prefix + "loop_lag_samples"] = len(lags)
    FIGURES[prefix + "progress_events"] = progress[0]
    assert all(r.png.startswith(b"\x89PNG") for r in results)
