"""`docker compose stop` gives zbot stop_grace_period before it kills it: the worst shutdown the code
allows (the running render, posting it, HTTP, the retried writes) must end inside it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from zbot.run import worst_shutdown_s

ROOT = Path(__file__).resolve().parent.parent
UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}


def compose_duration(text: str) -> float:
    """Compose's durations ("3m", "1m30s", "200s", a bare number of seconds), in seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", text)
    assert parts and "".join(f"{n}{u}" for n, u in parts) == text, f"not a compose duration: {text!r}"
    return sum(float(n) * UNITS[u] for n, u in parts)


def test_compose_durations_read_as_compose_reads_them():
    assert [compose_duration(d) for d in ("3m", "1m30s", "200s", "180", "2m0.5s")] == [180, 90, 200, 180, 120.5]


def test_the_worst_shutdown_fits_in_the_compose_file_s_grace():
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["zbot"]
    grace = compose_duration(service["stop_grace_period"])
    # Was 120 s render + 60 s posting + 5 s HTTP + 10 s + 10 s of retried writes = 205 s, past 3m.
    assert worst_shutdown_s() <= grace, f"the worst shutdown takes {worst_shutdown_s():.0f} s, the grace is {grace:.0f} s"
