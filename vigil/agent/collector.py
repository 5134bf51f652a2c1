"""Reading this machine's canonical metrics with psutil.

The names and labels are those of the canonical metric model in DESIGN.md,
so the server needs no mapping for its own agent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import psutil

from vigil.agent.rates import counter_rates

log = logging.getLogger(__name__)

Series = dict[str, Any]

# File systems that hold no user data, or read-only images (snaps, live media)
# that are always 100 % full and would only trip disk-full alerts.
SKIPPED_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.lxcfs",
        "fuse.snapfuse",
        "fusectl",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "udf",
    }
)
# Virtual block devices whose traffic is RAM or images, not disks.
SKIPPED_DEVICE_PREFIXES = ("loop", "ram", "zram", "sr")


def series(metric: str, ts: int, value: float, **labels: str) -> Series:
    """One series of the ingest format with a single point."""
    return {"metric": metric, "labels": labels, "points": [[ts, value]]}


class Collector:
    """Collects the canonical metrics; keeps the previous counters to turn them into rates.

    Each group of metrics is read on its own, so that one that fails (an
    unreadable /proc file, a disappearing device) does not cost the others.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # metric group -> (when it was read, counters by label value)
        self._counters: dict[str, tuple[float, dict[str, dict[str, float]]]] = {}
        self._failing: set[str] = set()
        # psutil measures CPU use since the previous call: this first call
        # gives the first collection a starting point.
        psutil.cpu_percent(interval=None)

    def collect(self, now: float) -> list[Series]:
        """The metrics of this moment, stamped with `now` as integer unix seconds."""
        ts = int(now)
        out: list[Series] = []
        groups: tuple[tuple[str, Callable[[int, list[Series]], None]], ...] = (
            ("cpu", self._cpu),
            ("memory", self._memory),
            ("swap", self._swap),
            ("filesystems", self._filesystems),
            ("disks", self._disks),
            ("network", self._network),
            ("load", self._load),
        )
        for name, read in groups:
            try:
                read(ts, out)
            except Exception:
                if name not in self._failing:
                    log.exception("agent: cannot read %s metrics; skipping them", name)
                    self._failing.add(name)
            else:
                if name in self._failing:
                    log.info("agent: %s metrics can be read again", name)
                    self._failing.discard(name)
        return out

    def _cpu(self, ts: int, out: list[Series]) -> None:
        out.append(series("cpu_usage_percent", ts, psutil.cpu_percent(interval=None)))
        # Logical CPUs, as the kernel's load average counts them: rules divide
        # load1 by it. None when the platform cannot tell; then it is left out.
        cores = os.cpu_count()
        if cores:
            out.append(series("cpu_cores", ts, cores))

    def _memory(self, ts: int, out: list[Series]) -> None:
        memory = psutil.virtual_memory()
        out.append(series("memory_used_percent", ts, memory.percent))
        out.append(series("memory_available_bytes", ts, memory.available))

    def _swap(self, ts: int, out: list[Series]) -> None:
        swap = psutil.swap_memory()
        out.append(series("swap_used_percent", ts, swap.percent if swap.total else 0.0))

    def _filesystems(self, ts: int, out: list[Series]) -> None:
        mountpoints: list[str] = []
        for part in psutil.disk_partitions(all=False):
            if part.mountpoint in mountpoints:
                continue
            if part.fstype in SKIPPED_FSTYPES:
                continue
            if part.fstype == "overlay" and part.mountpoint != "/":
                continue
            mountpoints.append(part.mountpoint)
        # In a container the root is an overlay, which psutil does not count as
        # a physical partition; the root is still the disk that fills up.
        if "/" not in mountpoints and os.name == "posix":
            mountpoints.insert(0, "/")
        for mountpoint in mountpoints:
            try:
                usage = psutil.disk_usage(mountpoint)
            except OSError:  # PermissionError included: a mount we may not look at
                continue
            out.append(series("filesystem_used_percent", ts, usage.percent, mountpoint=mountpoint))
            out.append(series("filesystem_free_bytes", ts, usage.free, mountpoint=mountpoint))

    def _disks(self, ts: int, out: list[Series]) -> None:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        current = {
            device: {
                "disk_read_bytes_per_second": float(io.read_bytes),
                "disk_write_bytes_per_second": float(io.write_bytes),
            }
            for device, io in counters.items()
            if not device.startswith(SKIPPED_DEVICE_PREFIXES)
        }
        self._rates("disks", "device", current, ts, out)

    def _network(self, ts: int, out: list[Series]) -> None:
        counters = psutil.net_io_counters(pernic=True) or {}
        current = {
            interface: {
                "network_receive_bytes_per_second": float(io.bytes_recv),
                "network_transmit_bytes_per_second": float(io.bytes_sent),
            }
            for interface, io in counters.items()
        }
        self._rates("network", "interface", current, ts, out)

    def _load(self, ts: int, out: list[Series]) -> None:
        load1, load5, load15 = os.getloadavg()
        out.append(series("load1", ts, load1))
        out.append(series("load5", ts, load5))
        out.append(series("load15", ts, load15))

    def _rates(
        self,
        group: str,
        label: str,
        current: dict[str, dict[str, float]],
        ts: int,
        out: list[Series],
    ) -> None:
        """Emit the rates since the previous reading of `group`, then remember this one."""
        at = self._clock()
        previous = self._counters.get(group)
        self._counters[group] = (at, current)
        if previous is None:
            return
        previous_at, previous_counters = previous
        elapsed = at - previous_at
        for name, counters in current.items():
            rates = counter_rates(previous_counters.get(name, {}), counters, elapsed)
            for metric, rate in rates.items():
                out.append(series(metric, ts, round(rate, 3), **{label: name}))
