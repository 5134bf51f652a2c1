"""collectd's native series mapped to the canonical metrics, through the real writer."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import orjson
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from vigil.ingest import writer
from vigil.ingest.canonical.collectd import derive, mountpoint
from vigil.ingest.parsers.collectd_json import parse
from vigil.metrics.models import Sample, Series

T = 1_790_000_000
NOW = T + 3600
GIB = 2.0**30
pytestmark = pytest.mark.django_db


def vl(
    plugin: str,
    type_: str,
    type_instance: str,
    value,
    t: float,
    *,
    instance: str = "",
    dstype: str = "gauge",
    interval: float = 10.0,
    dsnames: tuple[str, ...] = ("value",),
    host: str = "web-1",
) -> dict:
    values = value if isinstance(value, list) else [value]
    return {
        "values": values,
        "dstypes": [dstype] * len(values),
        "dsnames": list(dsnames),
        "time": t,
        "interval": interval,
        "host": host,
        "plugin": plugin,
        "plugin_instance": instance,
        "type": type_,
        "type_instance": type_instance,
    }


def send(*value_lists: dict, store_rates: bool | None = None) -> int:
    """One write_http request: the parser, then the writer with the collectd mapping."""
    result = parse(orjson.dumps(list(value_lists)), NOW, store_rates)
    assert result.errors == []
    with transaction.atomic():
        ids = writer.server_ids_for_hosts({sp.host for sp in result.series})
        items = [(ids[sp.host], sp) for sp in result.series]
        return writer.write_now(items, derive=partial(derive, intervals=result.intervals))


def with_previous(*value_lists: dict) -> None:
    """Send the same reading 10 s earlier: gauges are mapped from a host's second reading on."""
    send(*[vl | {"time": vl["time"] - 10} for vl in value_lists])
    Sample.objects.filter(series__metric__in=CANONICAL).delete()


def stored(metric: str, **labels: str) -> list[tuple[int, float]]:
    rows = Sample.objects.filter(series__metric=metric).order_by("ts")
    if labels:
        rows = rows.filter(series__labels=labels)
    return [(ts, round(v, 6)) for ts, v in rows.values_list("ts", "value")]


def jiffies(
    t: float, counters: dict[tuple[str, str], int | None], interval: float = 10.0, host="web-1"
) -> list[dict]:
    """A cpu reading: derive values per (cpu, state), in collectd's order."""
    return [
        vl("cpu", "cpu", state, value, t, instance=cpu, dstype="derive", interval=interval,
           host=host)
        for (cpu, state), value in counters.items()
    ]  # fmt: skip


STATES = ("user", "system", "wait", "nice", "idle")
CANONICAL = (
    "cpu_usage_percent",
    "memory_used_percent",
    "memory_available_bytes",
    "swap_used_percent",
    "filesystem_used_percent",
    "filesystem_free_bytes",
    "cpu_cores",
)


def test_cpu_usage_is_written_once_every_state_of_every_cpu_of_a_reading_is_stored():
    first = {(c, s): 1000 for c in "01" for s in STATES}
    # Over 10 s, cpu0: 30 user, 10 system, 10 wait, 50 idle jiffies; cpu1: 10 user, 90 idle.
    second = dict(first)
    second.update({("0", "user"): 1030, ("0", "system"): 1010, ("0", "wait"): 1010})
    second.update({("0", "idle"): 1050, ("1", "user"): 1010, ("1", "idle"): 1090})
    send(*jiffies(T, first))
    assert stored("cpu_usage_percent") == []  # the first reading of a counter has no rate

    lists = jiffies(T + 10, second)
    send(*lists[:4])
    send(*lists[4:8])
    assert stored("cpu_usage_percent") == []
    send(*lists[8:])
    # Busy is everything but idle and wait: (30 + 10 + 10) of 200 jiffies.
    assert stored("cpu_usage_percent") == [(T + 10, 25.0)]
    assert stored("cpu/cpu-user", instance="0") == [(T + 10, 3.0)]


def test_siblings_on_both_sides_of_a_second_are_one_reading_with_a_long_interval():
    first = {(c, s): 1000 for c in "01" for s in ("user", "idle")}
    send(*jiffies(T + 0.5, first))
    late = {("1", "user"): 1020, ("1", "idle"): 1080}
    early = {("0", "user"): 1020, ("0", "idle"): 1080}
    send(*jiffies(T + 10.001, late))
    assert stored("cpu_usage_percent") == []
    send(*jiffies(T + 9.999, early))
    assert stored("cpu_usage_percent") == [(T + 10, 20.0)]


def test_gauges_straddling_a_second_are_one_reading_after_a_straddling_previous_one():
    def reading(t: float) -> list[dict]:
        early = [vl("memory", "memory", s, GIB, t - 0.001) for s in ("used", "free")]
        late = [vl("memory", "memory", s, GIB, t + 0.001) for s in ("buffered", "cached")]
        return early + late

    send(*reading(T))
    send(*reading(T + 10))
    assert stored("memory_used_percent") == [(T + 10, 25.0)]


def test_with_a_short_interval_only_equal_seconds_are_one_reading():
    def reading(t: float, cpu: str, user: int, idle: int) -> list[dict]:
        return jiffies(t, {(cpu, "user"): user, (cpu, "idle"): idle}, interval=1.0)

    send(*reading(T + 0.5, "0", 1000, 1000), *reading(T + 0.5, "1", 1000, 1000))
    send(*reading(T + 1.5, "0", 1010, 1090), *reading(T + 1.5, "1", 1050, 1050))
    assert stored("cpu_usage_percent") == [(T + 1, 30.0)]
    # cpu1's sample a second earlier belongs to the previous reading: not mixed in.
    send(*reading(T + 2.2, "0", 1030, 1170))
    assert stored("cpu_usage_percent") == [(T + 1, 30.0)]
    send(*reading(T + 2.3, "1", 1060, 1140))
    assert stored("cpu_usage_percent") == [(T + 1, 30.0), (T + 2, 15.0)]


def test_memory_used_and_available_count_buffers_caches_and_reclaimable_slab_as_available():
    states = {"used": 2, "buffered": 0.5, "cached": 1, "free": 4, "slab_recl": 0.25}
    last = vl("memory", "memory", "slab_unrecl", 0.25 * GIB, T)
    first = [vl("memory", "memory", s, v * GIB, T) for s, v in states.items()]
    with_previous(*first, last)
    send(*first)
    assert stored("memory_used_percent") == []
    send(last)
    # total 8 GiB, available 4 + 0.5 + 1 + 0.25 = 5.75 GiB.
    assert stored("memory_used_percent") == [(T, 28.125)]
    assert stored("memory_available_bytes") == [(T, 5.75 * GIB)]


@pytest.mark.parametrize(
    ("used", "free", "cached", "percent"),
    [(1, 3, 0, 25.0), (1, 2, 1, 50.0), (0, 0, 0, 0.0)],
    ids=["used", "cached-counts-as-used", "no-swap"],
)
def test_swap_used_percent(used, free, cached, percent):
    states = {"used": used, "free": free, "cached": cached}
    with_previous(*[vl("swap", "swap", s, v * GIB, T) for s, v in states.items()])
    send(*[vl("swap", "swap", s, v * GIB, T) for s, v in states.items()])
    assert stored("swap_used_percent") == [(T, percent)]


def test_file_systems_map_back_to_mount_points_and_skip_pseudo_ones():
    lists = []
    used = []
    for instance, used_gib, free_gib in (
        ("root", 30, 70),
        ("var-lib", 1, 3),
        ("dev-shm", 1, 9),
        ("run-lock", 0, 1),
        ("dev", 0, 1),
    ):
        lists.append(vl("df", "df_complex", "free", free_gib * GIB, T, instance=instance))
        lists.append(vl("df", "df_complex", "reserved", 5 * GIB, T, instance=instance))
        used.append(vl("df", "df_complex", "used", used_gib * GIB, T, instance=instance))
    with_previous(*lists, *used)
    send(*lists)
    # Free space needs no sibling; the used share waits for "used".
    assert stored("filesystem_free_bytes", mountpoint="/") == [(T, 70 * GIB)]
    assert stored("filesystem_used_percent") == []
    send(*used)
    # Reserved blocks are left out, as df(1) does.
    assert stored("filesystem_used_percent", mountpoint="/") == [(T, 30.0)]
    assert stored("filesystem_used_percent", mountpoint="/var/lib") == [(T, 25.0)]
    mounts = set(
        Sample.objects.filter(series__metric__startswith="filesystem_").values_list(
            "series__labels__mountpoint", flat=True
        )
    )
    assert mounts == {"/", "/var/lib"}


@pytest.mark.parametrize(
    ("instance", "path"),
    [("root", "/"), ("var-lib", "/var/lib"), ("home", "/home"), ("boot-efi", "/boot/efi")],
)
def test_mount_points_are_collectds_instances_with_dashes_as_slashes(instance, path):
    assert mountpoint(instance) == path


def test_disks_interfaces_and_load_map_one_to_one():
    def reading(t: float, scale: int) -> list[dict]:
        lists = [
            vl("disk", "disk_octets", "", [100 * scale, 200 * scale], t, instance=device,
               dstype="derive", dsnames=("read", "write"))
            for device in ("sda", "sda1", "loop0")
        ]  # fmt: skip
        lists.append(
            vl("interface", "if_octets", "", [1000 * scale, 50 * scale], t, instance="eth0",
               dstype="derive", dsnames=("rx", "tx"))
        )  # fmt: skip
        terms = ("shortterm", "midterm", "longterm")
        lists.append(vl("load", "load", "", [0.5, 0.25, 0.125], t, dsnames=terms))
        return lists

    send(*reading(T, 1))
    send(*reading(T + 10, 2))
    assert stored("disk_read_bytes_per_second", device="sda") == [(T + 10, 10.0)]
    assert stored("disk_write_bytes_per_second", device="sda1") == [(T + 10, 20.0)]
    assert stored("disk_read_bytes_per_second", device="loop0") == []
    assert stored("network_receive_bytes_per_second", interface="eth0") == [(T + 10, 100.0)]
    assert stored("network_transmit_bytes_per_second", interface="eth0") == [(T + 10, 5.0)]
    assert stored("load1") == [(T, 0.5), (T + 10, 0.5)]
    assert stored("load5") == [(T, 0.25), (T + 10, 0.25)]
    assert stored("load15") == [(T, 0.125), (T + 10, 0.125)]


def test_the_first_reading_of_a_host_is_skipped_because_its_siblings_are_not_all_known():
    """The first request of a new host cannot know the value lists of the next one."""
    send(*[vl("memory", "memory", s, GIB, T) for s in ("used", "free")])
    send(*[vl("memory", "memory", s, GIB, T) for s in ("buffered", "cached")])
    assert stored("memory_used_percent") == []
    send(*[vl("memory", "memory", s, GIB, T + 10) for s in ("used", "free", "buffered")])
    assert stored("memory_used_percent") == []
    send(vl("memory", "memory", "cached", GIB, T + 10))
    assert stored("memory_used_percent") == [(T + 10, 25.0)]


def test_relative_load_is_not_load():
    send(vl("load", "load", "relative", [0.5, 0.25, 0.125], T,
            dsnames=("shortterm", "midterm", "longterm")))  # fmt: skip
    assert stored("load1") == []


def test_cpu_percentages_per_cpu_count_idle_and_wait_as_not_busy():
    lists = [
        vl("cpu", "percent", "user", 20, T, instance="0"),
        vl("cpu", "percent", "idle", 80, T, instance="0"),
        vl("cpu", "percent", "user", 50, T, instance="1"),
        vl("cpu", "percent", "wait", 10, T, instance="1"),
        vl("cpu", "percent", "idle", 40, T, instance="1"),
    ]
    with_previous(*lists)
    send(*lists)
    assert stored("cpu_usage_percent") == [(T, 35.0)]


def test_a_series_that_stopped_reporting_still_counts_as_a_sibling():
    """Documented: after a CPU goes offline its series must be deleted for cpu usage to resume."""
    with_previous(*[vl("cpu", "percent", "active", 50, T, instance=c) for c in "01"])
    send(*[vl("cpu", "percent", "active", 50, T, instance=c) for c in "01"])
    send(vl("cpu", "percent", "active", 50, T + 10, instance="0"))
    assert stored("cpu_usage_percent") == [(T, 50.0)]


def test_cpu_percentages_aggregated_over_all_cpus():
    lists = [
        vl("cpu", "percent", s, v, T)
        for s, v in (("user", 30), ("system", 10), ("wait", 5), ("idle", 55))
    ]
    with_previous(*lists)
    send(*lists)
    assert stored("cpu_usage_percent") == [(T, 40.0)]


def test_cpu_active_percentages_are_averaged_over_the_cpus():
    with_previous(*[vl("cpu", "percent", "active", 30, T, instance=c) for c in "01"])
    send(vl("cpu", "percent", "active", 30, T, instance="0"))
    assert stored("cpu_usage_percent") == []
    send(vl("cpu", "percent", "active", 50, T, instance="1"))
    assert stored("cpu_usage_percent") == [(T, 40.0)]


def test_memory_swap_and_file_system_percentages():
    memory = (("used", 20), ("free", 70), ("cached", 10))
    swap = (("used", 10), ("free", 90), ("cached", 0))
    df = (("used", 40), ("free", 40), ("reserved", 20))
    lists = [
        *[vl("memory", "percent", s, v, T) for s, v in memory],
        *[vl("swap", "percent", s, v, T) for s, v in swap],
        *[vl("df", "percent_bytes", s, v, T, instance="root") for s, v in df],
    ]
    with_previous(*lists)
    send(*lists)
    assert stored("memory_used_percent") == [(T, 20.0)]
    assert stored("memory_available_bytes") == []
    assert stored("swap_used_percent") == [(T, 10.0)]
    assert stored("filesystem_used_percent", mountpoint="/") == [(T, 50.0)]
    assert stored("filesystem_free_bytes") == []


def test_rates_sent_by_collectd_with_store_rates_on_are_used_as_they_are():
    send(*jiffies(T, {("0", "user"): None, ("0", "idle"): None}), store_rates=True)
    send(*jiffies(T + 10, {("0", "user"): 25, ("0", "idle"): 75}), store_rates=True)
    assert stored("cpu/cpu-user", instance="0") == [(T + 10, 25.0)]
    assert stored("cpu_usage_percent") == [(T + 10, 25.0)]


def per_cpu_jiffies(cpus: str) -> Callable[[float, int], list[dict]]:
    return lambda t, step: jiffies(t, {(c, s): 1000 + 10 * step for c in cpus for s in STATES})


def per_cpu_percents(cpus: str) -> Callable[[float, int], list[dict]]:
    return lambda t, step: [
        vl("cpu", "percent", s, 20.0, t, instance=c) for c in cpus for s in ("user", "idle")
    ]


def per_cpu_active(cpus: str) -> Callable[[float, int], list[dict]]:
    return lambda t, step: [vl("cpu", "percent", "active", 25.0, t, instance=c) for c in cpus]


def aggregated_percents(t: float, step: int) -> list[dict]:
    return [vl("cpu", "percent", s, 50.0, t) for s in ("user", "system", "idle")]


def aggregated_active(t: float, step: int) -> list[dict]:
    return [vl("cpu", "percent", "active", 50.0, t)]


@pytest.mark.parametrize(
    ("reading", "cores"),
    [
        (per_cpu_jiffies("0"), [(T + 10, 1.0)]),
        (per_cpu_jiffies("0123"), [(T + 10, 4.0)]),
        (per_cpu_percents("01"), [(T + 10, 2.0)]),
        (per_cpu_active("012"), [(T + 10, 3.0)]),
        # ReportByCpu false: the values do not say how many CPUs there are.
        (aggregated_percents, []),
        (aggregated_active, []),
    ],
    ids=["jiffies-1", "jiffies-4", "percent-2", "active-3", "aggregated", "aggregated-active"],
)
def test_cpu_cores_counts_the_cpus_of_a_complete_reading_split_over_requests(reading, cores):
    send(*reading(T, 0))
    lists = reading(T + 10, 1)
    half = (len(lists) + 1) // 2
    send(*lists[:half])
    # Half the CPUs of a reading are not the machine's CPUs: nothing yet.
    assert stored("cpu_cores") == []
    send(*lists[half:])
    assert stored("cpu_cores") == cores
    # The reading was complete: the aggregated ones give CPU usage, just no cores.
    assert [ts for ts, _ in stored("cpu_usage_percent")] == [T + 10]


def test_cpu_cores_comes_from_collectds_own_count_also_when_cpus_are_aggregated():
    """`ReportNumCpu true` sends `cpu/count`, a gauge that needs no sibling."""
    send(vl("cpu", "count", "", 8, T), *aggregated_percents(T, 0))
    assert stored("cpu_cores") == [(T, 8.0)]
    assert stored("cpu/count") == [(T, 8.0)]


def test_a_cpu_count_and_per_cpu_values_agree_in_one_cpu_cores_series():
    send(*per_cpu_percents("01")(T, 0), vl("cpu", "count", "", 2, T))
    send(*per_cpu_percents("01")(T + 10, 1), vl("cpu", "count", "", 2, T + 10))
    assert stored("cpu_cores") == [(T, 2.0), (T + 10, 2.0)]
    assert Series.objects.filter(metric="cpu_cores").count() == 1


def test_the_queries_of_the_mapping_do_not_grow_with_the_number_of_cpus():
    def queries(cpus: int, host: str) -> int:
        counters = {(str(c), s): 1000 for c in range(cpus) for s in STATES}
        send(*jiffies(T, counters, host=host))
        with CaptureQueriesContext(connection) as captured:
            send(*jiffies(T + 10, {k: v + 10 for k, v in counters.items()}, host=host))
        return len(captured)

    assert queries(2, "small") == queries(64, "big")
    assert Sample.objects.filter(series__metric="cpu_usage_percent").count() == 2
