"""The monitoring profile: the Grafana dashboard and docker-compose checked at the schema level (Docker
can't run here): every query names a metric zbot exports, every file the services mount exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.exposition import generate_latest

from zbot.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "zbot.json"
PROMQL_FUNCTIONS = {"sum", "rate", "histogram_quantile", "by", "le", "avg", "max", "min", "irate", "increase"}


def exported_metrics() -> set[str]:
    text = generate_latest(Metrics(lambda: 0, gpu=False).registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    return names | {"zbot_gpu_memory_bytes"}  # present on a machine with a GPU (zbot.metrics.GpuMemory)


def test_the_dashboard_queries_only_metrics_zbot_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_metrics()
    assert dashboard["uid"] == "zbot" and dashboard["panels"]
    ids, seen = set(), set()
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids and panel["type"] in {"timeseries", "stat"}
        ids.add(panel["id"])
        assert panel["datasource"]["uid"] == uid and {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")"), expr
            names = {n for n in re.findall(r"\b(zbot_[a-z_]+)", expr)}
            assert names and names <= exported, (expr, names - exported)
            seen |= names
            for label in re.findall(r'(\w+)="', expr):
                assert label in {"outcome", "reason", "verdict", "device"}, expr
    # What an operator asked for: queue, throughput, latency percentiles, refusals, failures, GPU memory.
    assert {"zbot_queue_depth", "zbot_jobs_total", "zbot_render_seconds_bucket", "zbot_wait_seconds_bucket",
            "zbot_refusals_total", "zbot_gpu_memory_bytes"} <= seen


def test_the_compose_file_starts_monitoring_only_in_its_profile_with_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "profiles" not in services["zbot"]  # `docker compose up` starts the bot alone, as before
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in compose["volumes"], source
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:")  # not open to the network by default
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    [target] = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == f"zbot:{services['zbot']['environment']['ZBOT_HTTP_PORT']}"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/zbot.yml").read_text())
    mounted = dict(v.split(":")[:2][::-1] for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounted[provider["providers"][0]["options"]["path"]] == "./deploy/grafana/dashboards"
