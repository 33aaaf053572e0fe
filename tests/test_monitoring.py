"""The monitoring profile: the Grafana dashboard, the alert rules and docker-compose checked at the schema
level (Docker and promtool can't run here): every query names a metric zbot exports, every file the
services mount exists, the dashboard names no data source of ours."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zbot.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "zbot.json"
PROMQL_FUNCTIONS = {"sum", "rate", "histogram_quantile", "by", "le", "avg", "max", "min", "irate", "increase"}


ALERTS = ROOT / "deploy" / "prometheus-alerts.yml"
HEALTH = {"model": True, "gateway": False, "accepting": True, "database": True, "safety": "vit"}


def fake_torch_with_a_gpu() -> SimpleNamespace:
    """What GpuMemory reads from torch, for one 80 GB card with 20 GB reserved (this machine has no GPU)."""
    cuda = SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True, device_count=lambda: 1,
                           memory_allocated=lambda i: 18e9, memory_reserved=lambda i: 20e9,
                           get_device_properties=lambda i: SimpleNamespace(total_memory=80e9))
    return SimpleNamespace(cuda=cuda)


def scrape(monkeypatch) -> str:
    """/metrics of a zbot that has a GPU and tracks its health checks."""
    monkeypatch.setitem(sys.modules, "torch", fake_torch_with_a_gpu())
    metrics = Metrics(lambda: 0)
    metrics.track_health(lambda: HEALTH)
    metrics.track_kept_images(lambda: 5 << 30, 20 << 30)
    return generate_latest(metrics.registry).decode()


@pytest.fixture
def exported(monkeypatch) -> set[str]:
    text = scrape(monkeypatch)
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def promql_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: zbot's and Prometheus' own `up`."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # not inside label values
    return set(re.findall(r"\b(zbot_[a-z_]+|up)\b(?=\s*[{\[)\s/*+<>=-]|$)", expr))


def balanced(expr: str) -> bool:
    depth, pairs = [], {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def datasource_uids(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["datasource"].get("uid")] if isinstance(node.get("datasource"), dict) else []
        return found + [uid for value in node.values() for uid in datasource_uids(value)]
    if isinstance(node, list):
        return [uid for value in node for uid in datasource_uids(value)]
    return []


def test_the_dashboard_names_its_data_source_through_a_variable_so_it_imports_anywhere():
    dashboard = json.loads(DASHBOARD.read_text())
    # A hard-coded uid (our provisioned "zbot-prometheus") leaves every panel without data in another
    # Grafana; the variable offers that Grafana's Prometheus data sources, its default first.
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    uids = datasource_uids(dashboard)
    assert uids and set(uids) == {"${" + variable["name"] + "}"}, set(uids)


def test_the_dashboard_queries_only_metrics_zbot_exports(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "zbot" and dashboard["panels"]
    ids, seen = set(), set()
    for panel in dashboard["panels"]:
        assert panel["id"] not in ids and panel["type"] in {"timeseries", "stat"}
        ids.add(panel["id"])
        assert panel["datasource"]["type"] == "prometheus" and {"x", "y", "w", "h"} <= set(panel["gridPos"])
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


def test_the_health_checks_and_the_gpus_size_are_exported_for_the_alert_rules(monkeypatch):
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scrape(monkeypatch)) for s in family.samples}
    # /healthz's yes-or-no checks, 1 or 0; the safety checker's name is not a check that fails.
    health = {dict(labels)["check"]: value for (name, labels), value in samples.items() if name == "zbot_health"}
    assert health == {"model": 1, "gateway": 0, "accepting": 1, "database": 1}
    device = (("device", "cuda:0"),)
    assert samples[("zbot_gpu_memory_total_bytes", device)] == 80e9
    assert samples[("zbot_gpu_memory_reserved_bytes", device)] == 20e9


def test_the_alert_rules_parse_and_cover_what_an_operator_asked_for(exported):
    rules = yaml.safe_load(ALERTS.read_text())
    [group] = rules["groups"]
    names = set()
    for rule in group["rules"]:
        expr = rule["expr"]
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"} and rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        assert balanced(expr), expr
        for duration in re.findall(r"\[([^\]]*)\]", expr):
            assert re.fullmatch(r"\d+[smh]", duration), expr
        used = promql_names(expr)
        assert used and used <= exported | {"up"}, (rule["alert"], used - exported)
        for label, value in re.findall(r'(\w+)=~?"([^"]*)"', expr):
            assert label in {"outcome", "check", "job"}, expr
            if label == "check":
                assert value in HEALTH, expr
        # Binary operators between aggregations need matching labels, or they silently match nothing.
        if " and " in expr and "sum by" in expr:
            assert "and on (instance)" in expr, expr
        names.add(rule["alert"])
    # Renders failing, the queue not moving, Discord's gateway lost, the database refusing writes, the
    # kept-image folder over its budget (trimmed to it, so over means owed images fill it), the GPU's memory near full (and zbot not answering at all).
    assert names == {"ZbotDown", "ZbotRendersFailing", "ZbotQueueNotMoving", "ZbotGatewayDisconnected",
                     "ZbotDatabaseRefusingWrites", "ZbotKeptImagesOverBudget", "ZbotGpuMemoryNearFull"}


def test_the_sanity_checks_catch_a_broken_expression():
    assert not balanced('sum(rate(zbot_jobs_total{outcome="failed"}[5m])')
    assert promql_names('rate(zbot_jobs_totl{outcome="zbot_x"}[5m]) / up') == {"zbot_jobs_totl", "up"}


def test_prometheus_loads_the_alert_rules_the_compose_file_mounts():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    mounted = dict(v.split(":")[:2][::-1] for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./"))
    [rule_file] = prometheus["rule_files"]
    assert ROOT / mounted[rule_file] == ALERTS
