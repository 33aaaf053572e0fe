"""The metrics on their own: what each report changes in the Prometheus text."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from zbot.core.jobs import BadInput, Picture, QueueFull, RateLimited, Result
from zbot.metrics import Metrics


def values(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def result(render_s: float, wait_s: float) -> Result:
    return Result(1, (Picture(7, b""),), 64, 64, 8, "a fox", render_s, wait_s)


def test_every_series_exists_at_zero_before_the_first_job():
    got = values(Metrics())
    for outcome in ("done", "failed", "rejected"):
        assert got[("zbot_jobs_total", (("outcome", outcome),))] == 0
    for reason in ("rate_limited", "too_many_pending", "queue_full", "bad_input", "not_ready", "banned"):
        assert got[("zbot_refusals_total", (("reason", reason),))] == 0
    assert got[("zbot_queue_depth", ())] == 0 and got[("zbot_render_seconds_count", ())] == 0


def test_outcomes_refusals_and_times_are_counted():
    metrics = Metrics()
    metrics.done(result(0.9, 0.1))
    metrics.done(result(3.0, 12.0))
    metrics.failed("the GPU ran out of memory")
    metrics.refused(RateLimited("limit", datetime.now(UTC)))
    metrics.refused(RateLimited("limit"))
    metrics.refused(QueueFull("full"))
    metrics.refused(BadInput("empty"))
    got = values(metrics)
    assert got[("zbot_jobs_total", (("outcome", "done"),))] == 2
    assert got[("zbot_jobs_total", (("outcome", "failed"),))] == 1
    assert got[("zbot_jobs_total", (("outcome", "rejected"),))] == 4
    assert got[("zbot_refusals_total", (("reason", "rate_limited"),))] == 2
    assert got[("zbot_refusals_total", (("reason", "queue_full"),))] == 1
    assert got[("zbot_refusals_total", (("reason", "bad_input"),))] == 1
    assert got[("zbot_render_seconds_count", ())] == 2 and got[("zbot_render_seconds_sum", ())] == 3.9
    assert got[("zbot_render_seconds_bucket", (("le", "1.0"),))] == 1
    assert got[("zbot_wait_seconds_bucket", (("le", "10.0"),))] == 1
    assert got[("zbot_wait_seconds_bucket", (("le", "30.0"),))] == 2


def test_the_queue_depth_is_read_at_each_scrape():
    depth = [3]
    metrics = Metrics(lambda: depth[0])
    assert values(metrics)[("zbot_queue_depth", ())] == 3
    depth[0] = 0
    assert values(metrics)[("zbot_queue_depth", ())] == 0
    metrics.track_queue(lambda: 5)
    assert values(metrics)[("zbot_queue_depth", ())] == 5


def test_each_metrics_has_its_own_registry():
    one, two = Metrics(), Metrics()
    one.failed()
    assert values(one)[("zbot_jobs_total", (("outcome", "failed"),))] == 1
    assert values(two)[("zbot_jobs_total", (("outcome", "failed"),))] == 0


def test_gpu_memory_has_no_samples_without_cuda():
    text = Metrics().exposition().decode()
    assert "# TYPE zbot_gpu_memory_bytes gauge" in text
    assert "zbot_gpu_memory_bytes{" not in text
