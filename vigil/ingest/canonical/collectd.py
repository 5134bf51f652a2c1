"""collectd's native series mapped to the canonical metrics (docs/collectd.md).

Disk, interface and load values map one to one. CPU, memory, swap and
file system usage are ratios of sibling value lists (`cpu-idle` against
`cpu-user`, `memory-used` against `memory-free`), which collectd sends one by
one and write_http spreads over several requests. So a canonical sample is
computed from the stored siblings, through `lookup`, and only once every
sibling of that reading is stored: every series of the group that the server
has ever sent (`lookup.labels`) must have a value for it.

The set of siblings is known once the server has stored one reading of the
group before: collectd sends its value lists in order over one connection, so
by then every series of the group exists. Rates of counters come from the
second reading on anyway; for gauges the first reading is skipped.

collectd stamps each value list when it is dispatched, so the siblings of one
reading are milliseconds apart and may fall on both sides of a second. With
an interval of 3 s or more, siblings one second apart are taken as one
reading, stamped with the later second; with shorter intervals only equal
seconds match, because the neighbouring second holds another reading.

cpu_cores (for rules on load per core) is the number of CPUs in a complete
CPU reading when the cpu plugin reports per CPU (`ReportByCpu true`, the
default), or collectd's own count (`cpu/count`, `ReportNumCpu true`). With
aggregated values and no count there is none, so rules on load per core
never fire for that server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from vigil.ingest.parsers.base import SeriesPoints

Item = tuple[int, SeriesPoints]
SiblingKey = tuple[str, tuple[tuple[str, str], ...]]  # (native metric, labels)
Reading = dict[SiblingKey, float]
Output = list[tuple[str, tuple[tuple[str, str], ...], float]]  # (metric, labels, value)

# The states collectd's cpu plugin reports on Linux, as type instances; guest
# states only with ReportGuestState (and then subtracted from user and nice).
CPU_STATES = (
    "user",
    "system",
    "wait",
    "nice",
    "interrupt",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
    "idle",
)
# Not time spent working: idle, and waiting for I/O (as psutil and our agent count it).
CPU_IDLE_STATES = frozenset({"idle", "wait"})
MEMORY_STATES = ("used", "buffered", "cached", "free", "slab_recl", "slab_unrecl")
# Memory the kernel can hand out without swapping: the documented definition of
# available memory for collectd's Linux states.
MEMORY_AVAILABLE_STATES = frozenset({"free", "buffered", "cached", "slab_recl"})
SWAP_STATES = ("used", "free", "cached")
# Mount points of pseudo and container file systems, after mapping collectd's
# names back; collectd's df plugin does not send the file system type.
PSEUDO_MOUNTPOINTS = ("/dev", "/proc", "/run", "/sys", "/snap", "/var/lib/docker")
PSEUDO_PREFIXES = tuple(p + "/" for p in PSEUDO_MOUNTPOINTS) + (
    "/var/lib/containers/",
    "/var/lib/kubelet/",
)
# Virtual block devices whose traffic is RAM or images, as our agent skips them.
SKIPPED_DEVICE_PREFIXES = ("loop", "ram", "zram", "sr")
# With an interval this long, the readings of a series are at least 2 s apart.
TOLERANT_INTERVAL = 3.0

DIRECT = {
    "load/load.shortterm": ("load1", None, None),
    "load/load.midterm": ("load5", None, None),
    "load/load.longterm": ("load15", None, None),
    # The cpu plugin's `ReportNumCpu true`: the number of CPUs, also when aggregated.
    "cpu/count": ("cpu_cores", None, None),
    "disk/disk_octets.read": ("disk_read_bytes_per_second", "device", None),
    "disk/disk_octets.write": ("disk_write_bytes_per_second", "device", None),
    "interface/if_octets.rx": ("network_receive_bytes_per_second", "interface", None),
    "interface/if_octets.tx": ("network_transmit_bytes_per_second", "interface", None),
    "df/df_complex-free": ("filesystem_free_bytes", "mountpoint", "mountpoint"),
}


def mountpoint(instance: str) -> str:
    """The mount point collectd's df plugin names `instance`: `root` is `/`,
    `var-lib` is `/var/lib` (a `-` of the mount point itself cannot be told apart)."""
    return "/" if instance == "root" else "/" + instance.replace("-", "/")


def is_pseudo_mountpoint(path: str) -> bool:
    return path in PSEUDO_MOUNTPOINTS or path.startswith(PSEUDO_PREFIXES)


def _labels_value(labels: Iterable[tuple[str, str]], name: str) -> str:
    return dict(labels).get(name, "")


# Each group: the sibling metrics; how siblings split into independent
# canonical series (a key per file system, or one key); and the formula.
@dataclass(frozen=True)
class Group:
    plugin: str
    members: tuple[str, ...]
    partition: Callable[[tuple[tuple[str, str], ...]], str | None]
    compute: Callable[[str, Reading], Output]
    # Counters give a rate only from a second reading, which proves the first.
    rates: bool = False


def _one(_labels: tuple[tuple[str, str], ...]) -> str:
    return ""


def _by_filesystem(labels: tuple[tuple[str, str], ...]) -> str | None:
    instance = _labels_value(labels, "instance")
    if not instance or is_pseudo_mountpoint(mountpoint(instance)):
        return None
    return instance


def _state(metric: str) -> str:
    return metric.rsplit("-", 1)[1] if "-" in metric else ""


def _cpu_cores(reading: Reading) -> Output:
    """With ReportByCpu (the default) the CPUs of a complete reading, counted by
    plugin instance; aggregated values (no instance) do not say how many there are.

    A reading, not a request: write_http may send one CPU's values in one
    request and the next CPU's in another.
    """
    cpus = {instance for (_, labels) in reading if (instance := _labels_value(labels, "instance"))}
    return [("cpu_cores", (), float(len(cpus)))] if cpus else []


def _cpu_usage(_key: str, reading: Reading) -> Output:
    """Busy share of all CPUs: from jiffies rates or from per-state percentages alike."""
    total = busy = 0.0
    for (metric, _), value in reading.items():
        total += value
        if _state(metric) not in CPU_IDLE_STATES:
            busy += value
    out = _cpu_cores(reading)
    if total > 0:
        out.append(("cpu_usage_percent", (), _clamp(100.0 * busy / total)))
    return out


def _cpu_active(_key: str, reading: Reading) -> Output:
    """ReportByState false: one `active` percentage per CPU (or for all)."""
    values = list(reading.values())
    return [("cpu_usage_percent", (), _clamp(sum(values) / len(values))), *_cpu_cores(reading)]


def _memory(absolute: bool) -> Callable[[str, Reading], Output]:
    def compute(_key: str, reading: Reading) -> Output:
        total = sum(reading.values())
        available = sum(v for (m, _), v in reading.items() if _state(m) in MEMORY_AVAILABLE_STATES)
        if total <= 0:
            return []
        out: Output = [("memory_used_percent", (), _clamp(100.0 * (total - available) / total))]
        if absolute:
            out.append(("memory_available_bytes", (), available))
        return out

    return compute


def _swap(_key: str, reading: Reading) -> Output:
    total = sum(reading.values())
    free = sum(v for (m, _), v in reading.items() if _state(m) == "free")
    # No swap at all is 0 % used, as our agent reports it.
    used = 100.0 * (total - free) / total if total > 0 else 0.0
    return [("swap_used_percent", (), _clamp(used))]


def _filesystem(instance: str, reading: Reading) -> Output:
    """Used share of the space non-root users can have, as df(1) shows it."""
    used = sum(v for (m, _), v in reading.items() if _state(m) == "used")
    free = sum(v for (m, _), v in reading.items() if _state(m) == "free")
    if used + free <= 0:
        return []
    labels = (("mountpoint", mountpoint(instance)),)
    return [("filesystem_used_percent", labels, _clamp(100.0 * used / (used + free)))]


def _clamp(percent: float) -> float:
    return min(100.0, max(0.0, percent))


GROUPS = (
    Group("cpu", tuple(f"cpu/cpu-{s}" for s in CPU_STATES), _one, _cpu_usage, rates=True),
    Group("cpu", tuple(f"cpu/percent-{s}" for s in CPU_STATES), _one, _cpu_usage),
    Group("cpu", ("cpu/percent-active",), _one, _cpu_active),
    Group("memory", tuple(f"memory/memory-{s}" for s in MEMORY_STATES), _one, _memory(True)),
    Group("memory", tuple(f"memory/percent-{s}" for s in MEMORY_STATES), _one, _memory(False)),
    Group("swap", tuple(f"swap/swap-{s}" for s in SWAP_STATES), _one, _swap),
    Group("swap", tuple(f"swap/percent-{s}" for s in SWAP_STATES), _one, _swap),
    Group("df", ("df/df_complex-used", "df/df_complex-free"), _by_filesystem, _filesystem),
    Group("df", ("df/percent_bytes-used", "df/percent_bytes-free"), _by_filesystem, _filesystem),
)
_GROUP_OF = {metric: group for group in GROUPS for metric in group.members}


def derive(
    items: list[Item],
    lookup,
    intervals: Mapping[tuple[str, str], float] | None = None,
) -> list[Item]:
    """The canonical series of a batch of collectd's native series.

    `intervals` maps (host, plugin) to collectd's interval in seconds, as the
    parser read it; without it siblings must have equal timestamps.
    """
    intervals = intervals or {}
    out: dict[tuple[int, str | None, str, tuple], dict[int, float]] = defaultdict(dict)
    triggers: dict[tuple[int, Group], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    hosts: dict[int, str | None] = {}
    in_batch: dict[int, set[str]] = defaultdict(set)
    for server_id, sp in items:
        hosts.setdefault(server_id, sp.host)
        in_batch[server_id].add(sp.metric)
        direct = DIRECT.get(sp.metric)
        if direct is not None:
            _map_direct(server_id, sp, direct, out)
        group = _GROUP_OF.get(sp.metric)
        if group is not None:
            key = group.partition(sp.labels)
            if key is not None:
                triggers[(server_id, group)][key].update(sp.timestamps)

    for (server_id, group), by_key in triggers.items():
        host = hosts[server_id]
        interval = intervals.get((host, group.plugin), 0.0) if host else 0.0
        for (metric, labels), points in _complete(
            server_id, group, by_key, in_batch[server_id], interval, lookup
        ):
            out[(server_id, host, metric, labels)].update(points)

    return [
        (server_id, SeriesPoints(host, metric, labels, list(points), list(points.values())))
        for (server_id, host, metric, labels), points in out.items()
    ]


def _map_direct(server_id: int, sp: SeriesPoints, direct: tuple, out: dict) -> None:
    metric, label, transform = direct
    labels: tuple[tuple[str, str], ...] = ()
    if label is not None:
        instance = _labels_value(sp.labels, "instance")
        if not instance:
            return
        if transform == "mountpoint":
            if _by_filesystem(sp.labels) is None:
                return
            instance = mountpoint(instance)
        elif label == "device" and instance.startswith(SKIPPED_DEVICE_PREFIXES):
            return
        labels = ((label, instance),)
    out[(server_id, sp.host, metric, labels)].update(zip(sp.timestamps, sp.values, strict=True))


def _complete(
    server_id: int,
    group: Group,
    by_key: dict[str, set[int]],
    in_batch: set[str],
    interval: float,
    lookup,
) -> Iterable[tuple[tuple[str, tuple], dict[int, float]]]:
    """Canonical points of the readings of `group` that the batch completed.

    1. Metric by metric, siblings missing from the batch first: the series the
       server has sent (the expected siblings), then their stored samples
       around the batch's timestamps (and the previous reading's, for gauges).
       A timestamp that a sibling has no value for is dropped, and once none
       is left the lookups stop: most requests complete no reading.
    2. Per timestamp left, a reading is complete when every expected sibling
       has a value at it (or, when tolerant, within a second of it).
    """
    tolerant = interval >= TOLERANT_INTERVAL
    candidates = {key: set(ts) for key, ts in by_key.items()}
    expected: dict[str, set[SiblingKey]] = defaultdict(set)
    samples: dict[SiblingKey, dict[int, float]] = defaultdict(dict)
    for metric in sorted(group.members, key=lambda m: (m in in_batch, m)):
        siblings: dict[str, set[SiblingKey]] = defaultdict(set)
        for labels in lookup.labels(server_id, metric):
            key_labels = tuple(sorted(labels.items()))
            key = group.partition(key_labels)
            if candidates.get(key):
                siblings[key].add((metric, key_labels))
        if not siblings:
            continue
        wanted: set[int] = set()
        for key in siblings:
            for t in candidates[key]:
                wanted.update(_around(t, tolerant))
                if not group.rates and interval > 0:
                    wanted.update(_around(round(t - interval), tolerant))
        for labels, ts, value in lookup.values(server_id, metric, wanted):
            samples[(metric, tuple(sorted(labels.items())))][ts] = value
        for key, found in siblings.items():
            expected[key] |= found
            candidates[key] = {
                t
                for t in candidates[key]
                if all(any(u in samples[s] for u in _around(t, tolerant)) for s in found)
            }
        if not any(candidates.values()):
            return []

    out: dict[tuple[str, tuple], dict[int, float]] = defaultdict(dict)
    for key, siblings_of_key in expected.items():
        for t in sorted(candidates[key]):
            if not group.rates and not _seen_before(t, interval, siblings_of_key, samples):
                continue
            found_reading = _reading(t, siblings_of_key, samples, tolerant)
            if found_reading is None:
                continue
            at, reading = found_reading
            for metric, labels, value in group.compute(key, reading):
                out[(metric, labels)][at] = value
    return out.items()


def _around(t: int, tolerant: bool) -> tuple[int, ...]:
    return (t - 1, t, t + 1) if tolerant else (t,)


def _seen_before(
    t: int, interval: float, siblings: set[SiblingKey], samples: dict[SiblingKey, dict[int, float]]
) -> bool:
    """Whether a sibling has a value at the previous reading: then all siblings are known.

    Without an interval there is no telling; the reading is taken as it is.
    """
    if interval <= 0:
        return True
    previous = _around(round(t - interval), interval >= TOLERANT_INTERVAL)
    return any(ts in samples.get(s, ()) for s in siblings for ts in previous)


def _reading(
    t: int,
    siblings: set[SiblingKey],
    samples: dict[SiblingKey, dict[int, float]],
    tolerant: bool,
) -> tuple[int, Reading] | None:
    """The complete reading at `t` and the timestamp it is stored at, or None."""
    reading: Reading = {}
    stamps: list[int] = []
    for sibling in siblings:
        stored = samples.get(sibling)
        if not stored:
            return None
        if t in stored:
            at = t
        elif tolerant and t + 1 in stored:
            at = t + 1
        elif tolerant and t - 1 in stored:
            at = t - 1
        else:
            return None
        reading[sibling] = stored[at]
        stamps.append(at)
    if max(stamps) - min(stamps) > 1:
        return None
    return max(stamps), reading
