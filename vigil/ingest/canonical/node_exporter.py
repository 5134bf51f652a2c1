"""Canonical metrics from Prometheus node_exporter series.

One scrape (or push) holds every series a derivation needs, so this reads only
the items it is given, never the lookup. Counters arrive here as per-second
rates (the writer made them), so the first scrape of a target gives no CPU,
disk or network figures: rates need two readings.

- cpu_usage_percent = 100 * (1 - idle / all modes), the rates of
  node_cpu_seconds_total summed over every CPU.
- cpu_cores = the number of distinct `cpu` label values of
  node_cpu_seconds_total at a timestamp (node_exporter lists the online
  logical CPUs), for rules on load per core.
- memory_used_percent = 100 * (1 - MemAvailable / MemTotal);
  memory_available_bytes = MemAvailable.
- swap_used_percent = 100 * (SwapTotal - SwapFree) / SwapTotal (0 without swap).
- filesystem_used_percent{mountpoint} as `df` counts it:
  100 * (size - free) / (size - free + avail), which leaves out the blocks
  reserved for root; filesystem_free_bytes = avail. Pseudo file systems are
  skipped, as our own agent skips them.
- disk_{read,write}_bytes_per_second{device}, network_{receive,transmit}_
  bytes_per_second{interface} and load1/5/15: renamed, with one label.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from vigil.agent.collector import SKIPPED_DEVICE_PREFIXES, SKIPPED_FSTYPES
from vigil.ingest.parsers.base import GAUGE, Labels, SeriesPoints

Item = tuple[int, SeriesPoints]
Values = dict[int, float]  # timestamp -> value

CPU = "node_cpu_seconds_total"
MEM_AVAILABLE = "node_memory_MemAvailable_bytes"
MEM_TOTAL = "node_memory_MemTotal_bytes"
SWAP_TOTAL = "node_memory_SwapTotal_bytes"
SWAP_FREE = "node_memory_SwapFree_bytes"
FS_AVAIL = "node_filesystem_avail_bytes"
FS_SIZE = "node_filesystem_size_bytes"
FS_FREE = "node_filesystem_free_bytes"


class Rename(NamedTuple):
    canonical: str
    native_label: str | None = None  # the one label kept ...
    label: str | None = None  # ... under this name
    skipped_prefixes: tuple[str, ...] = ()  # label values left out


RENAMED: dict[str, Rename] = {
    "node_disk_read_bytes_total": Rename(
        "disk_read_bytes_per_second", "device", "device", SKIPPED_DEVICE_PREFIXES
    ),
    "node_disk_written_bytes_total": Rename(
        "disk_write_bytes_per_second", "device", "device", SKIPPED_DEVICE_PREFIXES
    ),
    "node_network_receive_bytes_total": Rename(
        "network_receive_bytes_per_second", "device", "interface"
    ),
    "node_network_transmit_bytes_total": Rename(
        "network_transmit_bytes_per_second", "device", "interface"
    ),
    "node_load1": Rename("load1"),
    "node_load5": Rename("load5"),
    "node_load15": Rename("load15"),
}
USED = frozenset(
    {CPU, MEM_AVAILABLE, MEM_TOTAL, SWAP_TOTAL, SWAP_FREE, FS_AVAIL, FS_SIZE, FS_FREE, *RENAMED}
)


def _values(sp: SeriesPoints) -> Values:
    return dict(zip(sp.timestamps, sp.values, strict=True))


def _series(host: str | None, metric: str, labels: Labels, values: Values) -> SeriesPoints:
    stamps = sorted(values)
    return SeriesPoints(host, metric, labels, stamps, [values[t] for t in stamps], GAUGE)


def _percent(part: float, whole: float) -> float:
    return min(100.0, max(0.0, 100.0 * part / whole))


class _Server:
    """The node_exporter series of one server in one batch, by name."""

    def __init__(self, host: str | None) -> None:
        self.by_metric: dict[str, list[SeriesPoints]] = defaultdict(list)
        self.host = host

    def one(self, metric: str) -> Values:
        found = self.by_metric.get(metric)
        return _values(found[0]) if found else {}

    def derive(self) -> list[SeriesPoints]:
        out: list[SeriesPoints] = []
        self._cpu(out)
        self._memory(out)
        self._filesystems(out)
        self._renamed(out)
        return out

    def _cpu(self, out: list[SeriesPoints]) -> None:
        idle: Values = defaultdict(float)
        total: Values = defaultdict(float)
        cpus: dict[int, set[str]] = defaultdict(set)
        for sp in self.by_metric.get(CPU, ()):
            labels = dict(sp.labels)
            is_idle = labels.get("mode") == "idle"
            cpu = labels.get("cpu")
            for ts, rate in zip(sp.timestamps, sp.values, strict=True):
                total[ts] += rate
                if is_idle:
                    idle[ts] += rate
                if cpu:
                    cpus[ts].add(cpu)
        usage = {
            ts: _percent(all_modes - idle[ts], all_modes)
            for ts, all_modes in total.items()
            if ts in idle and all_modes > 0
        }
        if usage:
            out.append(_series(self.host, "cpu_usage_percent", (), usage))
        if cpus:
            cores = {ts: float(len(names)) for ts, names in cpus.items()}
            out.append(_series(self.host, "cpu_cores", (), cores))

    def _memory(self, out: list[SeriesPoints]) -> None:
        available, total = self.one(MEM_AVAILABLE), self.one(MEM_TOTAL)
        if available:
            out.append(_series(self.host, "memory_available_bytes", (), available))
        used = {
            ts: _percent(total[ts] - avail, total[ts])
            for ts, avail in available.items()
            if total.get(ts, 0) > 0
        }
        if used:
            out.append(_series(self.host, "memory_used_percent", (), used))
        swap_total, swap_free = self.one(SWAP_TOTAL), self.one(SWAP_FREE)
        swap = {
            ts: _percent(size - swap_free[ts], size) if size > 0 else 0.0
            for ts, size in swap_total.items()
            if ts in swap_free
        }
        if swap:
            out.append(_series(self.host, "swap_used_percent", (), swap))

    def _filesystems(self, out: list[SeriesPoints]) -> None:
        # mountpoint -> metric -> values; the first device seen at a mount
        # point wins (a mount point can show several stacked devices).
        mounts: dict[str, dict[str, Values]] = {}
        for metric in (FS_AVAIL, FS_SIZE, FS_FREE):
            for sp in self.by_metric.get(metric, ()):
                labels = dict(sp.labels)
                mountpoint, fstype = labels.get("mountpoint"), labels.get("fstype", "")
                if not mountpoint or fstype in SKIPPED_FSTYPES:
                    continue
                if fstype == "overlay" and mountpoint != "/":
                    continue
                mounts.setdefault(mountpoint, {}).setdefault(metric, _values(sp))
        for mountpoint, found in sorted(mounts.items()):
            labels = (("mountpoint", mountpoint),)
            avail = found.get(FS_AVAIL, {})
            size, free = found.get(FS_SIZE, {}), found.get(FS_FREE, {})
            if avail:
                out.append(_series(self.host, "filesystem_free_bytes", labels, avail))
            used_percent = {}
            for ts, a in avail.items():
                if ts in size and ts in free:
                    used = size[ts] - free[ts]
                    if used + a > 0:
                        used_percent[ts] = _percent(used, used + a)
            if used_percent:
                out.append(_series(self.host, "filesystem_used_percent", labels, used_percent))

    def _renamed(self, out: list[SeriesPoints]) -> None:
        for native, rename in RENAMED.items():
            for sp in self.by_metric.get(native, ()):
                labels: Labels = ()
                if rename.native_label and rename.label:
                    value = dict(sp.labels).get(rename.native_label)
                    if not value or value.startswith(rename.skipped_prefixes):
                        continue
                    labels = ((rename.label, value),)
                out.append(_series(self.host, rename.canonical, labels, _values(sp)))


def derive(items: list[Item], lookup: object = None) -> list[Item]:
    """The canonical series of the node_exporter series among `items`."""
    servers: dict[int, _Server] = {}
    for server_id, sp in items:
        if sp.metric not in USED:
            continue
        server = servers.get(server_id)
        if server is None:
            server = servers[server_id] = _Server(sp.host)
        server.by_metric[sp.metric].append(sp)
    return [
        (server_id, sp)
        for server_id, server in servers.items()
        for sp in server.derive()
        if sp.timestamps
    ]
