"""Prometheus metrics: what the queue holds, how jobs end, how long they wait and render, GPU memory.

Each Metrics has its own registry (not prometheus-client's global one), so a process, or a test, can
build as many as it likes. The Service reports each job's outcome through `refused`, `done` and
`failed`; the queue depth and GPU memory are read when /metrics is scraped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from zbot.core.bans import Banned
from zbot.core.jobs import BadInput, NotReady, QueueFull, RateLimited, Refused, Result, TooManyPending

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = ("done", "failed", "rejected")
VERDICTS = ("passed", "flagged", "unchecked")
REASONS = tuple(kind.kind for kind in (RateLimited, TooManyPending, QueueFull, BadInput, NotReady, Banned))
# From a warm H100 (under a second) to a cold CPU or a 24 GB card with offloading (a minute or more).
RENDER_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """zbot's counters, histograms and gauges, in a registry of their own."""

    def __init__(self, depth: Callable[[], int] | None = None, *, gpu: bool = True):
        self.registry = CollectorRegistry()
        self.jobs = Counter("zbot_jobs", "Jobs by how they ended: done, failed (the render raised) or "
                            "rejected (refused before queueing).", ["outcome"], registry=self.registry)
        self.refusals = Counter("zbot_refusals", "Requests refused, by reason.", ["reason"],
                                registry=self.registry)
        self.render_seconds = Histogram("zbot_render_seconds", "Time on the GPU per image.",
                                        buckets=RENDER_BUCKETS, registry=self.registry)
        self.wait_seconds = Histogram("zbot_wait_seconds", "Time in the queue before the render started.",
                                      buckets=WAIT_BUCKETS, registry=self.registry)
        # Every label value from the start: a rate() over a series that appears late misses its first count.
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)
        for reason in REASONS:
            self.refusals.labels(reason)
        self.verdicts = Counter("zbot_images_checked", "Images drawn, by the safety check's verdict: passed, "
                                "flagged, or unchecked (ZBOT_SAFETY=off).", ["verdict"], registry=self.registry)
        for verdict in VERDICTS:
            self.verdicts.labels(verdict)
        self.queue_depth = Gauge("zbot_queue_depth", "Jobs waiting or running.", registry=self.registry)
        self._depth = depth
        self.queue_depth.set_function(self._read_depth)
        if gpu:
            self.registry.register(GpuMemory())

    def track_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from `depth` (e.g. `lambda: executor.depth`) at each scrape."""
        self._depth = depth

    def track_health(self, health: Callable[[], Mapping[str, object]]) -> None:
        """Export /healthz's yes-or-no checks (model, gateway, database, ...) as zbot_health{check}, read
        at each scrape, so that alert rules can see a lost gateway or a database that refuses writes."""
        self.registry.register(HealthChecks(health))

    def track_kept_images(self, size: Callable[[], int], budget: int) -> None:
        """Export the kept images' size on disk, read from `size` at each scrape (a count kept as they
        are saved and swept: no disk work on the event loop), and their budget (0: none)."""
        Gauge("zbot_kept_images_bytes", "Bytes the kept images (ZBOT_KEEP_IMAGES_DAYS) take on disk.",
              registry=self.registry).set_function(lambda: float(size()))
        Gauge("zbot_kept_images_budget_bytes", "ZBOT_KEEP_IMAGES_MAX_GB in bytes: beyond it the oldest kept "
              "images go (0: no cap).", registry=self.registry).set(budget)

    def _read_depth(self) -> float:
        return float(self._depth()) if self._depth is not None else 0.0

    # -- what the Service reports -------------------------------------------------------------

    def refused(self, refusal: Refused) -> None:
        self.jobs.labels("rejected").inc()
        self.refusals.labels(refusal.kind).inc()

    def done(self, result: Result) -> None:
        self.jobs.labels("done").inc()
        for picture in result.pictures:
            self.verdicts.labels("unchecked" if picture.verdict is None else
                                 "flagged" if picture.verdict.flagged else "passed").inc()
        self.render_seconds.observe(result.render_s)
        self.wait_seconds.observe(result.wait_s)

    def failed(self, reason: str = "") -> None:
        self.jobs.labels("failed").inc()

    # -- exposition ----------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text /metrics serves (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class GpuMemory(Collector):
    """zbot_gpu_memory_bytes per CUDA device this process uses: allocated by tensors and reserved by
    PyTorch's caching allocator (closer to what nvidia-smi shows). No samples without CUDA."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        allocated = GaugeMetricFamily("zbot_gpu_memory_bytes", "GPU memory held by tensors, per device.",
                                      labels=["device"])
        reserved = GaugeMetricFamily("zbot_gpu_memory_reserved_bytes", "GPU memory reserved by PyTorch's "
                                     "caching allocator, per device.", labels=["device"])
        total = GaugeMetricFamily("zbot_gpu_memory_total_bytes", "The GPU's memory, per device (what "
                                  "the reserved bytes may grow to).", labels=["device"])
        torch = sys.modules.get("torch")
        # Only once the renderer has initialised CUDA: asking earlier would create a CUDA context here.
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            for index in range(torch.cuda.device_count()):
                allocated.add_metric([f"cuda:{index}"], float(torch.cuda.memory_allocated(index)))
                reserved.add_metric([f"cuda:{index}"], float(torch.cuda.memory_reserved(index)))
                total.add_metric([f"cuda:{index}"], float(torch.cuda.get_device_properties(index).total_memory))
        yield allocated
        yield reserved
        yield total

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class HealthChecks(Collector):
    """zbot_health{check}: 1 where a /healthz check passes, 0 where it fails; checks that are not yes or
    no (the safety checker's name) are left out."""

    def __init__(self, health: Callable[[], Mapping[str, object]]):
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("zbot_health", "1 while a /healthz check passes (model loaded, gateway "
                                   "connected, accepting jobs, database writable), 0 while it fails.",
                                   labels=["check"])
        for name, ok in self._health().items():
            if isinstance(ok, bool):
                family.add_metric([name], float(ok))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
