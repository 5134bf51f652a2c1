"""node_exporter series mapped to the canonical metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from vigil.ingest import writer
from vigil.ingest.canonical import node_exporter
from vigil.ingest.parsers.base import GAUGE, SeriesPoints
from vigil.ingest.parsers.prometheus_text import parse
from vigil.metrics.models import Sample, Series
from vigil.testing import make_server

T = 1_790_000_000
FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
CANONICAL = {
    "cpu_usage_percent",
    "memory_used_percent",
    "memory_available_bytes",
    "swap_used_percent",
    "filesystem_used_percent",
    "filesystem_free_bytes",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "network_receive_bytes_per_second",
    "network_transmit_bytes_per_second",
    "load1",
    "load5",
    "load15",
    "cpu_cores",
}


def sp(metric: str, value: float, ts: int = T, **labels: str) -> tuple[int, SeriesPoints]:
    return (1, SeriesPoints("h", metric, tuple(sorted(labels.items())), [ts], [value]))


def derived(items) -> dict[tuple[str, tuple], float]:
    out = {}
    for server_id, s in node_exporter.derive(items, None):
        assert server_id == 1 and s.kind == GAUGE and s.host == "h"
        assert s.timestamps == [T]
        out[(s.metric, s.labels)] = round(s.values[0], 6)
    return out


def test_cpu_usage_is_the_share_of_non_idle_time_over_all_cpus():
    rates = {("0", "idle"): 0.5, ("0", "user"): 0.4, ("0", "system"): 0.1,
             ("1", "idle"): 0.9, ("1", "user"): 0.05, ("1", "iowait"): 0.05}  # fmt: skip
    items = [
        sp("node_cpu_seconds_total", rate, cpu=cpu, mode=mode)
        for (cpu, mode), rate in rates.items()
    ]
    assert derived(items) == {("cpu_usage_percent", ()): 30.0, ("cpu_cores", ()): 2.0}


def cpu_seconds(cpus: tuple[str, ...], modes=("idle", "user", "system")):
    return [sp("node_cpu_seconds_total", 0.1, cpu=cpu, mode=mode) for cpu in cpus for mode in modes]


def fixture_cpus(name: str) -> set[str]:
    """The `cpu` labels of node_cpu_seconds_total in a saved page, read without our parser."""
    lines = (FIXTURES / f"node_exporter_1.5.0_{name}.txt").read_text().splitlines()
    return {
        line.split('cpu="', 1)[1].split('"', 1)[0]
        for line in lines
        if line.startswith("node_cpu_seconds_total{")
    }


FIXTURE_CPUS = fixture_cpus("a")


@pytest.mark.parametrize(
    ("items", "cores"),
    [
        (cpu_seconds(("0",)), 1.0),
        (cpu_seconds(("0", "1", "2", "3")), 4.0),
        # CPU 1 offline: node_exporter lists the online ones, numbered with a gap.
        (cpu_seconds(("0", "2", "3")), 3.0),
        # Every mode of a CPU is one CPU; a CPU with one mode left still counts.
        (cpu_seconds(("0", "1"), modes=("idle",)) + cpu_seconds(("2",), modes=("user",)), 3.0),
        # The page of a real node_exporter, with the rates the writer would give.
        ([sp("node_cpu_seconds_total", 0.5, cpu=c, mode="idle") for c in FIXTURE_CPUS], 2.0),
        ([sp("node_cpu_seconds_total", 0.5, mode="idle")], None),  # no cpu label: not a CPU
        ([sp("node_load1", 0.5)], None),
        ([sp("node_cpu_guest_seconds_total", 0.5, cpu="0", mode="user")], None),
    ],
    ids=["one", "four", "gap", "partial-modes", "fixture", "no-cpu-label", "no-cpu-series",
         "guest-seconds"],
)  # fmt: skip
def test_cpu_cores_counts_the_distinct_cpus_of_a_scrape(items, cores):
    assert derived(items).get(("cpu_cores", ())) == cores


def test_cpu_cores_is_counted_at_each_timestamp_of_a_push():
    items = [
        (1, SeriesPoints("h", "node_cpu_seconds_total", (("cpu", "0"), ("mode", "idle")),
                         [T, T + 10], [0.5, 0.5])),
        (1, SeriesPoints("h", "node_cpu_seconds_total", (("cpu", "1"), ("mode", "idle")),
                         [T], [0.5])),
    ]  # fmt: skip
    (cores,) = [s for _, s in node_exporter.derive(items, None) if s.metric == "cpu_cores"]
    assert (cores.labels, cores.timestamps, cores.values) == ((), [T, T + 10], [2.0, 1.0])


def test_memory_and_swap_percentages():
    items = [
        sp("node_memory_MemTotal_bytes", 8000),
        sp("node_memory_MemAvailable_bytes", 2000),
        sp("node_memory_SwapTotal_bytes", 1000),
        sp("node_memory_SwapFree_bytes", 750),
    ]
    assert derived(items) == {
        ("memory_available_bytes", ()): 2000.0,
        ("memory_used_percent", ()): 75.0,
        ("swap_used_percent", ()): 25.0,
    }


def test_a_server_without_swap_uses_none_of_it():
    items = [sp("node_memory_SwapTotal_bytes", 0), sp("node_memory_SwapFree_bytes", 0)]
    assert derived(items) == {("swap_used_percent", ()): 0.0}


def test_filesystems_are_counted_like_df_and_pseudo_file_systems_are_skipped():
    def fs(mountpoint, fstype, size, free, avail, device="/dev/sda1"):
        labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
        return [
            sp("node_filesystem_size_bytes", size, **labels),
            sp("node_filesystem_free_bytes", free, **labels),
            sp("node_filesystem_avail_bytes", avail, **labels),
        ]

    items = [
        *fs("/", "ext4", size=1000, free=300, avail=200),  # 50 blocks reserved for root
        *fs("/data", "xfs", size=100, free=100, avail=100, device="/dev/sdb"),
        *fs("/run", "tmpfs", size=10, free=5, avail=5, device="tmpfs"),
        *fs("/snap/core/1", "squashfs", size=10, free=0, avail=0, device="/dev/loop0"),
        *fs("/var/lib/docker/overlay2/x/merged", "overlay", 10, 5, 5, device="overlay"),
        *fs("/empty", "ext4", size=0, free=0, avail=0, device="/dev/sdc"),
    ]
    root, data, empty = ("mountpoint", "/"), ("mountpoint", "/data"), ("mountpoint", "/empty")
    assert derived(items) == {
        # used 700 of the 900 a user can have: like df's 78 %, not 70 %
        ("filesystem_used_percent", (root,)): round(100 * 700 / 900, 6),
        ("filesystem_free_bytes", (root,)): 200.0,
        ("filesystem_used_percent", (data,)): 0.0,
        ("filesystem_free_bytes", (data,)): 100.0,
        ("filesystem_free_bytes", (empty,)): 0.0,
    }


def test_an_overlay_root_counts_as_the_root_file_system():
    labels = {"device": "overlay", "fstype": "overlay", "mountpoint": "/"}
    items = [
        sp("node_filesystem_size_bytes", 100, **labels),
        sp("node_filesystem_free_bytes", 40, **labels),
        sp("node_filesystem_avail_bytes", 40, **labels),
    ]
    assert derived(items)[("filesystem_used_percent", (("mountpoint", "/"),))] == 60.0


def test_disk_network_and_load_are_renamed_with_one_label():
    items = [
        sp("node_disk_read_bytes_total", 100, device="sda"),
        sp("node_disk_written_bytes_total", 200, device="sda"),
        sp("node_disk_read_bytes_total", 5, device="loop0"),
        sp("node_disk_read_bytes_total", 5, device="zram0"),
        sp("node_network_receive_bytes_total", 300, device="eth0"),
        sp("node_network_transmit_bytes_total", 400, device="eth0"),
        sp("node_load1", 0.5),
        sp("node_load5", 0.25),
        sp("node_load15", 0.125),
        sp("node_boot_time_seconds", 1.7e9),
    ]
    assert derived(items) == {
        ("disk_read_bytes_per_second", (("device", "sda"),)): 100.0,
        ("disk_write_bytes_per_second", (("device", "sda"),)): 200.0,
        ("network_receive_bytes_per_second", (("interface", "eth0"),)): 300.0,
        ("network_transmit_bytes_per_second", (("interface", "eth0"),)): 400.0,
        ("load1", ()): 0.5,
        ("load5", ()): 0.25,
        ("load15", ()): 0.125,
    }


def test_series_of_other_exporters_give_nothing():
    assert node_exporter.derive([sp("http_requests_total", 5), sp("up", 1)], None) == []


def test_each_server_of_a_batch_is_mapped_on_its_own():
    a = (1, SeriesPoints(None, "node_load1", (), [T], [1.0]))
    b = (2, SeriesPoints(None, "node_load1", (), [T], [2.0]))
    got = [(sid, s.metric, s.values) for sid, s in node_exporter.derive([a, b], None)]
    assert got == [(1, "load1", [1.0]), (2, "load1", [2.0])]


@pytest.mark.django_db
def test_two_real_scrapes_through_the_writer_give_every_canonical_metric():
    server = make_server("node-1")
    for name, ts in (("a", T), ("b", T + 2)):
        result = parse((FIXTURES / f"node_exporter_1.5.0_{name}.txt").read_bytes(), ts)
        with transaction.atomic():
            writer.write_now([(server.pk, s) for s in result.series], derive=node_exporter.derive)
    rows = Sample.objects.filter(series__server=server, series__metric__in=CANONICAL)
    stored = {
        (metric, tuple(sorted(labels.items()))): (ts, value)
        for metric, labels, ts, value in rows.values_list(
            "series__metric", "series__labels", "ts", "value"
        )
    }
    assert {metric for metric, _ in stored} == CANONICAL
    # Rates need two scrapes: CPU usage exists only at the second one.
    assert stored[("cpu_usage_percent", ())][0] == T + 2
    assert 0 <= stored[("cpu_usage_percent", ())][1] <= 100
    assert 0 <= stored[("filesystem_used_percent", (("mountpoint", "/"),))][1] <= 100
    # Counted from the rates, so from the second scrape on too: the page's two CPUs.
    assert stored[("cpu_cores", ())] == (T + 2, float(len(FIXTURE_CPUS))) == (T + 2, 2.0)
    # The alert engine reads the newest value kept on the series.
    cores = Series.objects.get(server=server, metric="cpu_cores")
    assert (cores.labels, cores.last_value) == ({}, 2.0)
    # The native counters are stored as rates too, under their own names.
    idle = Sample.objects.get(
        series__server=server,
        series__metric="node_cpu_seconds_total",
        series__labels={"cpu": "0", "mode": "idle"},
    )
    assert idle.ts == T + 2 and 0 <= idle.value <= 1.5
