from __future__ import annotations

from pathlib import Path

import pytest

from vigil.ingest.canonical.telegraf import COUNTERS, derive
from vigil.ingest.parsers.base import COUNTER, GAUGE, SeriesPoints
from vigil.ingest.parsers.influx_line import parse

NOW = 1_800_000_000
FIXTURES = Path(__file__).parent / "fixtures" / "telegraf"


def canonical(body: bytes | str, server_id: int = 7) -> dict[tuple, list[tuple[int, float]]]:
    """{(metric, labels): points} that derive gives for a parsed body (gauges only)."""
    data = body.encode() if isinstance(body, str) else body
    result = parse(data, NOW, counters=COUNTERS)
    assert result.errors == []
    out = derive([(server_id, sp) for sp in result.series], lookup=None)
    for sid, sp in out:
        assert sid == server_id
        assert sp.kind == GAUGE
    return {
        (sp.metric, sp.labels): list(zip(sp.timestamps, sp.values, strict=True)) for _, sp in out
    }


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.lp").read_bytes()


def test_cpu_usage_is_100_minus_idle_of_cpu_total_only():
    assert canonical(fixture("cpu")) == {
        ("cpu_usage_percent", ()): [(1568760922, pytest.approx(100 - 82.3834196941197))]
    }


@pytest.mark.parametrize(("idle", "usage"), [(100.4, 0.0), (-0.5, 100.0), (0, 100.0), (75, 25.0)])
def test_cpu_usage_stays_within_0_and_100(idle, usage):
    assert canonical(f"cpu,cpu=cpu-total usage_idle={idle}") == {
        ("cpu_usage_percent", ()): [(NOW, usage)]
    }


def test_memory_and_swap_come_from_used_percent_and_available():
    assert canonical(fixture("mem") + fixture("swap")) == {
        ("memory_used_percent", ()): [(1574712869, 15.95004011996231)],
        ("memory_available_bytes", ()): [(1574712869, 16818249728.0)],
        ("swap_used_percent", ()): [(1511894782, 45.43883523785713)],
    }


def test_load_and_cpu_cores_come_from_system_and_its_string_field_is_skipped():
    assert canonical(fixture("system")) == {
        ("load1", ()): [(1483964144, 3.72)],
        ("load5", ()): [(1483964144, 2.4)],
        ("load15", ()): [(1483964144, 2.1)],
        ("cpu_cores", ()): [(1483964144, 4.0)],
    }


@pytest.mark.parametrize(
    ("body", "cores"),
    [
        ("system,host=h n_cpus=1i", [(NOW, 1.0)]),
        ("system,host=h load1=0.5,n_cpus=64i,n_users=2i", [(NOW, 64.0)]),
        # A float is what a processor or another client may send: still a count.
        ("system,host=h n_cpus=8", [(NOW, 8.0)]),
        # Global tags stay on the native series only: one cpu_cores per server.
        ("system,dc=par1,host=h n_cpus=2i", [(NOW, 2.0)]),
        ("system,host=h load1=0.5,load5=0.25,load15=0.1", None),
        ("cpu,cpu=cpu-total,host=h n_cpus=2i", None),
        ("kernel,host=h n_cpus=2i", None),
    ],
    ids=["one", "with-load", "float", "global-tag", "no-field", "cpu-measurement", "kernel"],
)
def test_cpu_cores_is_the_n_cpus_field_of_system(body, cores):
    assert canonical(body).get(("cpu_cores", ())) == cores


def test_filesystems_use_path_as_mountpoint_and_skip_pseudo_file_systems():
    assert canonical(fixture("disk")) == {
        ("filesystem_used_percent", (("mountpoint", "/"),)): [(1453832006, 20.131039916242397)],
        ("filesystem_free_bytes", (("mountpoint", "/"),)): [(1453832006, 398407520256.0)],
    }


@pytest.mark.parametrize(
    ("fstype", "path", "kept"),
    [
        ("ext4", "/var", True),
        ("xfs", "/", True),
        ("overlay", "/", True),
        ("overlay", "/var/lib/docker/overlay2/x/merged", False),
        ("tmpfs", "/run", False),
        ("devtmpfs", "/dev", False),
        ("squashfs", "/snap/core/1", False),
        ("proc", "/proc", False),
        ("sysfs", "/sys", False),
        ("cgroup2", "/sys/fs/cgroup", False),
        ("nsfs", "/run/netns/x", False),
    ],
)
def test_pseudo_file_systems_are_skipped_like_our_agent_does(fstype, path, kept):
    body = f"disk,device=x,fstype={fstype},host=h,mode=rw,path={path} used_percent=5,free=10i"
    assert bool(canonical(body)) is kept


def test_disk_and_network_rates_keep_their_device_and_interface():
    items = [
        (1, SeriesPoints("h", "diskio.read_bytes", (("name", "sda"),), [NOW], [4096.0])),
        (1, SeriesPoints("h", "diskio.write_bytes", (("name", "nvme0n1"),), [NOW], [1.5])),
        (1, SeriesPoints("h", "diskio.read_bytes", (("name", "loop0"),), [NOW], [1.0])),
        (1, SeriesPoints("h", "diskio.read_bytes", (("name", "zram0"),), [NOW], [1.0])),
        (1, SeriesPoints("h", "net.bytes_recv", (("interface", "eth0"),), [NOW], [2000.0])),
        (1, SeriesPoints("h", "net.bytes_sent", (("interface", "eth0"),), [NOW], [100.0])),
        (1, SeriesPoints("h", "net.bytes_recv", (("interface", "all"),), [NOW], [1.0])),
        (1, SeriesPoints("h", "net.packets_recv", (("interface", "eth0"),), [NOW], [1.0])),
    ]
    out = derive(items, lookup=None)
    assert [(sp.host, sp.metric, sp.labels, sp.values) for _, sp in out] == [
        ("h", "disk_read_bytes_per_second", (("device", "sda"),), [4096.0]),
        ("h", "disk_write_bytes_per_second", (("device", "nvme0n1"),), [1.5]),
        ("h", "network_receive_bytes_per_second", (("interface", "eth0"),), [2000.0]),
        ("h", "network_transmit_bytes_per_second", (("interface", "eth0"),), [100.0]),
    ]


def test_canonical_series_carry_the_host_and_drop_other_tags():
    out = derive(
        [(3, SeriesPoints("web-1", "mem.used_percent", (("dc", "par1"),), [NOW], [12.0]))],
        lookup=None,
    )
    assert out == [(3, SeriesPoints("web-1", "memory_used_percent", (), [NOW], [12.0], GAUGE))]


def test_the_byte_counters_of_net_and_diskio_are_parsed_as_counters():
    result = parse(fixture("net") + fixture("diskio"), NOW, counters=COUNTERS)
    kinds = {(sp.metric, sp.labels): sp.kind for sp in result.series}
    assert kinds[("net.bytes_recv", (("interface", "eth0"),))] == COUNTER
    assert kinds[("net.bytes_sent", (("interface", "eth0"),))] == COUNTER
    assert kinds[("diskio.read_bytes", (("name", "sda"),))] == COUNTER
    assert kinds[("diskio.write_bytes", (("name", "sda"),))] == COUNTER
    assert kinds[("diskio.iops_in_progress", (("name", "sda"),))] == GAUGE
    assert kinds[("net.tcp_currestab", (("interface", "all"),))] == GAUGE


def test_other_measurements_give_no_canonical_series():
    assert canonical(fixture("net")) == {}  # counters: no rate before they are rates
    assert canonical("processes,host=h running=3i\nkernel,host=h boot_time=1i") == {}
