"""Telegraf's default inputs (cpu, mem, swap, disk, diskio, net, system) to canonical metrics.

Native series arrive as `<measurement>.<field>` with the tags as labels
(parsers/influx_line.py). The cumulative byte counters of `net` and `diskio`
are marked COUNTER by the parser (COUNTERS below), so that by the time
`derive` sees them the writer has made them per-second rates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vigil.agent.collector import SKIPPED_DEVICE_PREFIXES, SKIPPED_FSTYPES
from vigil.ingest.parsers.base import GAUGE, Labels, SeriesPoints

if TYPE_CHECKING:
    from vigil.ingest.writer import SampleLookup

Item = tuple[int, SeriesPoints]

# Cumulative counters of the default inputs, stored as per-second rates.
COUNTERS = frozenset(
    {
        "net.bytes_recv",
        "net.bytes_sent",
        "net.packets_recv",
        "net.packets_sent",
        "net.err_in",
        "net.err_out",
        "net.drop_in",
        "net.drop_out",
        "diskio.read_bytes",
        "diskio.write_bytes",
        "diskio.reads",
        "diskio.writes",
        "diskio.read_time",
        "diskio.write_time",
        "diskio.io_time",
        "diskio.weighted_io_time",
        "diskio.merged_reads",
        "diskio.merged_writes",
        "swap.in",
        "swap.out",
        "kernel.context_switches",
        "kernel.interrupts",
        "kernel.processes_forked",
    }
)


def _cpu_total(labels: dict[str, str]) -> Labels | None:
    # Per-core lines (cpu=cpu0, ...) would each claim to be the machine's CPU.
    return () if labels.get("cpu") == "cpu-total" else None


def _busy(idle: float) -> float:
    return min(100.0, max(0.0, 100.0 - idle))


def _no_labels(labels: dict[str, str]) -> Labels | None:
    return ()


def _mountpoint(labels: dict[str, str]) -> Labels | None:
    path = labels.get("path")
    fstype = labels.get("fstype", "")
    if not path or fstype in SKIPPED_FSTYPES or (fstype == "overlay" and path != "/"):
        return None
    return (("mountpoint", path),)


def _device(labels: dict[str, str]) -> Labels | None:
    name = labels.get("name")
    if not name or name.startswith(SKIPPED_DEVICE_PREFIXES):
        return None
    return (("device", name),)


def _interface(labels: dict[str, str]) -> Labels | None:
    # interface=all carries the protocol counters of /proc/net/snmp, not traffic.
    interface = labels.get("interface")
    if not interface or interface == "all":
        return None
    return (("interface", interface),)


Labeller = Callable[[dict[str, str]], Labels | None]

# native metric -> (canonical metric, labels from the native labels or None to skip, value map)
_MAP: dict[str, tuple[str, Labeller, Callable[[float], float] | None]] = {
    "cpu.usage_idle": ("cpu_usage_percent", _cpu_total, _busy),
    "mem.used_percent": ("memory_used_percent", _no_labels, None),
    "mem.available": ("memory_available_bytes", _no_labels, None),
    "swap.used_percent": ("swap_used_percent", _no_labels, None),
    "disk.used_percent": ("filesystem_used_percent", _mountpoint, None),
    "disk.free": ("filesystem_free_bytes", _mountpoint, None),
    "diskio.read_bytes": ("disk_read_bytes_per_second", _device, None),
    "diskio.write_bytes": ("disk_write_bytes_per_second", _device, None),
    "net.bytes_recv": ("network_receive_bytes_per_second", _interface, None),
    "net.bytes_sent": ("network_transmit_bytes_per_second", _interface, None),
    "system.load1": ("load1", _no_labels, None),
    "system.load5": ("load5", _no_labels, None),
    "system.load15": ("load15", _no_labels, None),
    # The logical CPUs (gopsutil's cpu.Counts(true)), for rules on load per core.
    "system.n_cpus": ("cpu_cores", _no_labels, None),
}


def derive(items: list[Item], lookup: SampleLookup) -> list[Item]:
    """The canonical series of a /write batch, after counters became rates.

    Every canonical value comes from one native series at the same timestamps,
    so `lookup` (stored siblings) is not needed.
    """
    out: list[Item] = []
    for server_id, sp in items:
        rule = _MAP.get(sp.metric)
        # A counter not yet made a rate would be stored as one: never map it.
        if rule is None or sp.kind != GAUGE:
            continue
        metric, labeller, convert = rule
        labels = labeller(dict(sp.labels))
        if labels is None:
            continue
        values = [convert(v) for v in sp.values] if convert else list(sp.values)
        out.append((server_id, SeriesPoints(sp.host, metric, labels, list(sp.timestamps), values)))
    return out
