from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import orjson
import psutil
import pytest

from vigil.agent.collector import Collector

NOW = 1_732_500_000.7
CANONICAL = {
    "cpu_usage_percent": (),
    "cpu_cores": (),
    "memory_used_percent": (),
    "memory_available_bytes": (),
    "swap_used_percent": (),
    "filesystem_used_percent": ("mountpoint",),
    "filesystem_free_bytes": ("mountpoint",),
    "disk_read_bytes_per_second": ("device",),
    "disk_write_bytes_per_second": ("device",),
    "network_receive_bytes_per_second": ("interface",),
    "network_transmit_bytes_per_second": ("interface",),
    "load1": (),
    "load5": (),
    "load15": (),
}
RATES = {m for m in CANONICAL if m.endswith("_per_second")}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def by_metric(series: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in series:
        out[s["metric"]].append(s)
    return out


def test_it_emits_every_canonical_metric_with_sane_values_on_this_machine() -> None:
    clock = Clock()
    collector = Collector(clock=clock)
    collector.collect(NOW - 10)
    clock.now += 10
    metrics = by_metric(collector.collect(NOW))

    assert set(metrics) == set(CANONICAL)
    for name, items in metrics.items():
        for s in items:
            assert tuple(s["labels"]) == CANONICAL[name], name
            assert s["points"] == [[1_732_500_000, s["points"][0][1]]]
            value = s["points"][0][1]
            assert isinstance(value, int | float) and value >= 0, (name, value)
            if name.endswith("_percent"):
                assert value <= 100, (name, value)
    mountpoints = {s["labels"]["mountpoint"] for s in metrics["filesystem_used_percent"]}
    assert "/" in mountpoints
    free = {s["labels"]["mountpoint"]: s["points"][0][1] for s in metrics["filesystem_free_bytes"]}
    assert free["/"] == pytest.approx(psutil.disk_usage("/").free, rel=0.05)
    memory = metrics["memory_available_bytes"][0]["points"][0][1]
    assert 0 < memory <= psutil.virtual_memory().total


def test_it_counts_the_logical_cpus_for_load_per_core() -> None:
    metrics = by_metric(Collector().collect(NOW))
    (cores,) = metrics["cpu_cores"]
    assert cores["labels"] == {}
    assert cores["points"] == [[1_732_500_000, os.cpu_count()]]
    assert cores["points"][0][1] == psutil.cpu_count(logical=True)


def test_it_leaves_cpu_cores_out_when_the_platform_cannot_count_the_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    metrics = by_metric(Collector().collect(NOW))
    assert "cpu_cores" not in metrics
    assert "cpu_usage_percent" in metrics


def test_it_emits_no_rates_on_the_first_collection() -> None:
    metrics = by_metric(Collector().collect(NOW))
    assert not RATES & set(metrics)
    assert "cpu_usage_percent" in metrics


def test_it_leaves_out_virtual_block_devices() -> None:
    clock = Clock()
    collector = Collector(clock=clock)
    collector.collect(NOW)
    clock.now += 1
    devices = {
        s["labels"]["device"]
        for s in collector.collect(NOW + 1)
        if s["metric"] == "disk_read_bytes_per_second"
    }
    assert not [d for d in devices if d.startswith(("loop", "ram", "zram", "sr"))]


def test_it_computes_rates_from_the_counters_over_the_elapsed_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = {"value": 1_000_000}

    def net_io_counters(pernic: bool = False) -> dict[str, Any]:
        return {"eth0": SimpleNamespace(bytes_sent=sent["value"], bytes_recv=5000)}

    monkeypatch.setattr(psutil, "net_io_counters", net_io_counters)
    clock = Clock()
    collector = Collector(clock=clock)
    collector.collect(NOW)
    clock.now += 4
    sent["value"] += 4000
    rates = {
        s["metric"]: s["points"][0][1]
        for s in collector.collect(NOW + 4)
        if s["labels"].get("interface") == "eth0"
    }
    assert rates == {
        "network_transmit_bytes_per_second": 1000.0,
        "network_receive_bytes_per_second": 0.0,
    }

    clock.now += 4
    sent["value"] = 10  # the interface was re-created: no rate for this interval
    rates = {s["metric"] for s in collector.collect(NOW + 8) if "interface" in s["labels"]}
    assert rates == {"network_receive_bytes_per_second"}


def test_a_failing_metric_group_costs_only_its_own_metrics_and_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("/proc/diskstats: permission denied")

    monkeypatch.setattr(psutil, "disk_io_counters", broken)
    collector = Collector()
    with caplog.at_level(logging.ERROR, logger="vigil.agent"):
        for i in range(3):
            metrics = by_metric(collector.collect(time.time() + i))
    assert "memory_used_percent" in metrics and "load1" in metrics
    assert "disk_read_bytes_per_second" not in metrics
    assert len([r for r in caplog.records if "cannot read disks metrics" in r.message]) == 1


def test_the_servers_parser_accepts_every_point_of_a_collection() -> None:
    from vigil.ingest.parsers import vigil_json

    clock = Clock()
    collector = Collector(clock=clock)
    collector.collect(NOW - 10)
    clock.now += 10
    series = collector.collect(NOW)
    result = vigil_json.parse(orjson.dumps({"host": "web-1", "series": series}), NOW)
    assert result.errors == []
    assert result.points == len(series)
