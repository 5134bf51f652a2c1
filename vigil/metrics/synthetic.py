"""Synthetic server history for benchmarks and demos: pure numpy, no database.

Each server gets the canonical series of an agent (cpu, memory, swap,
filesystems, disks, network, load, up) driven by one model with a daily and
weekly rhythm, noise, spikes and bursts, rounded the way agents round (two
decimals for percentages and load, whole bytes, rates that are a byte count
over the interval).

The history has the shape of a running installation:

- raw samples on a regular grid over the raw range, the older part cut into
  compressed blocks per window, the newest part left as hot rows;
- 5-minute and 1-hour rollups computed from those raw samples wherever they
  exist, so that every tier tells the same story;
- older rollups simulated directly from the same model at a few points per
  bucket (min <= avg <= max holds, count is the samples an agent would have
  sent), the 1-hour ones combined from the simulated 5-minute ones where both
  tiers exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from vigil.metrics import codec
from vigil.metrics.buckets import floor

FIVE_MINUTES = 300
HOUR = 3600
DAY = 86400
# Points per bucket of the simulated (older) rollups: enough for a plausible
# min/max spread, few enough to make a month of history cheap.
POINTS_PER_5M = 4
POINTS_PER_1H = 6
# Noise of a simulated point stands for the spread of a whole bucket of samples.
COARSE_NOISE = 1.5
# Time zones of the locations in turn (hours from UTC), so that their daily
# peaks do not line up.
LOCATION_TZ_HOURS = (1, -5, 8, 0, -8, 5.5, 9, 2, -3, 10)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Spec:
    """One series of every server: its canonical metric and labels."""

    metric: str
    labels: Labels = ()

    def label(self, name: str) -> str:
        return dict(self.labels)[name]


# The most telling series first, so that a few series per server still make a
# useful demo; then pairs per mountpoint, device and interface in turn.
_FIRST: tuple[Spec, ...] = (
    Spec("cpu_usage_percent"),
    Spec("memory_used_percent"),
    Spec("load1"),
    Spec("up"),
    Spec("filesystem_used_percent", (("mountpoint", "/"),)),
    Spec("memory_available_bytes"),
    Spec("network_receive_bytes_per_second", (("interface", "eth0"),)),
    Spec("network_transmit_bytes_per_second", (("interface", "eth0"),)),
    Spec("disk_read_bytes_per_second", (("device", "sda"),)),
    Spec("disk_write_bytes_per_second", (("device", "sda"),)),
    Spec("filesystem_free_bytes", (("mountpoint", "/"),)),
    Spec("swap_used_percent"),
    Spec("load5"),
    Spec("load15"),
)
_MOUNTS = ("/boot", "/var", "/home", "/data", "/var/lib/docker", "/srv", "/tmp", "/opt")  # noqa: S108
_DEVICES = ("sdb", "nvme0n1", "nvme1n1", "dm-0", "dm-1", "sdc", "sdd", "sde")
_INTERFACES = ("eth1", "lo", "docker0", "bond0", "eth2", "eth3", "wg0", "br0")


def _extra_pairs() -> Iterator[tuple[Spec, Spec]]:
    i = 0
    while True:
        mount = _MOUNTS[i] if i < len(_MOUNTS) else f"/data{i - len(_MOUNTS) + 1}"
        device = _DEVICES[i] if i < len(_DEVICES) else f"nvme{i - len(_DEVICES) + 2}n1"
        interface = _INTERFACES[i] if i < len(_INTERFACES) else f"eth{i - len(_INTERFACES) + 4}"
        m, d, n = (("mountpoint", mount),), (("device", device),), (("interface", interface),)
        yield Spec("filesystem_used_percent", m), Spec("filesystem_free_bytes", m)
        yield Spec("disk_read_bytes_per_second", d), Spec("disk_write_bytes_per_second", d)
        yield (
            Spec("network_receive_bytes_per_second", n),
            Spec("network_transmit_bytes_per_second", n),
        )
        i += 1


def catalog(count: int) -> list[Spec]:
    """The `count` series of every server."""
    specs = list(_FIRST[:count])
    pairs = _extra_pairs()
    while len(specs) < count:
        specs.extend(next(pairs))
    return specs[:count]


@dataclass(frozen=True)
class Plan:
    """The time ranges of every tier, aligned so that no bucket or block
    window is split between raw and simulated history."""

    now: int
    interval: int
    block_seconds: int
    raw_start: int  # first raw window; raw samples run to `now`
    hot_start: int  # = the compaction watermark: blocks below, hot rows from here
    start_5m: int  # oldest 5-minute bucket
    start_1h: int  # oldest 1-hour bucket
    end_5m: int  # = the 5-minute watermark: buckets before it are final
    end_1h: int  # = the 1-hour watermark

    @property
    def sim_5m_start(self) -> int:
        """Where the simulated 5-minute buckets start (hour aligned, so that the
        1-hour buckets over them are combined from whole hours)."""
        return min(floor(self.start_5m, HOUR), self.raw_start)

    @property
    def sim_1h_end(self) -> int:
        return self.sim_5m_start

    @property
    def samples_per_5m(self) -> int:
        return FIVE_MINUTES // self.interval

    @property
    def samples_per_1h(self) -> int:
        return HOUR // self.interval

    def raw_grid(self, offset: int) -> np.ndarray:
        """Sample times of a server whose agent reports `offset` seconds into each interval."""
        return np.arange(self.raw_start + offset, self.now + 1, self.interval, dtype=np.int64)


def make_plan(
    now: int,
    *,
    raw_days: float,
    days_5m: float,
    days_1h: float,
    interval: int,
    hot_hours: float,
    block_seconds: int,
) -> Plan:
    if interval <= 0 or FIVE_MINUTES % interval:
        raise ValueError("the interval must divide 300 seconds (5, 10, 15, 30, 60, ...)")
    if raw_days <= 0:
        raise ValueError("the raw range must be longer than zero")
    # Raw history starts on a boundary of both block windows and hours.
    align = math.lcm(block_seconds, HOUR)
    raw_start = floor(now - int(raw_days * DAY), align)
    hot_start = max(raw_start, floor(now - int(hot_hours * HOUR), block_seconds))
    end_5m, end_1h = floor(now, FIVE_MINUTES), floor(now, HOUR)
    return Plan(
        now=now,
        interval=interval,
        block_seconds=block_seconds,
        raw_start=raw_start,
        hot_start=hot_start,
        start_5m=floor(end_5m - int(days_5m * DAY), FIVE_MINUTES),
        start_1h=floor(end_1h - int(days_1h * DAY), HOUR),
        end_5m=end_5m,
        end_1h=end_1h,
    )


@dataclass
class Tier:
    """Rollup buckets of all series of one server: `ts` and `count` per bucket,
    the aggregates as (series, bucket) arrays."""

    ts: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, start: int, end: int) -> Tier:
        keep = (self.ts >= start) & (self.ts < end)
        return Tier(
            self.ts[keep],
            self.count[keep],
            self.min[:, keep],
            self.max[:, keep],
            self.sum[:, keep],
            self.last[:, keep],
        )

    @classmethod
    def concat(cls, parts: list[Tier], series: int) -> Tier:
        parts = [p for p in parts if len(p)]
        if not parts:
            f = np.empty((series, 0), dtype=np.float64)
            return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), f, f, f, f)
        return cls(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.count for p in parts]),
            *(
                np.concatenate([getattr(p, name) for p in parts], axis=1)
                for name in ("min", "max", "sum", "last")
            ),
        )


@dataclass
class ServerHistory:
    """Everything generated for one server; series are in `catalog` order."""

    ts: np.ndarray  # raw sample times, shared by the server's series
    values: np.ndarray  # (series, samples)
    rollup_5m: Tier
    rollup_1h: Tier
    raw_samples: int = field(init=False)

    def __post_init__(self) -> None:
        self.raw_samples = self.values.size


# -- the model ----------------------------------------------------------------


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` points (fewer at the start), along the last axis."""
    if window <= 1:
        return x
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., window:] -= c[..., :-window]
    n = np.minimum(np.arange(1, x.shape[-1] + 1), window)
    return out / n


def _events(rng: np.random.Generator, n: int, step: float, per_day: float, seconds: float):
    """A mask of episodes (spikes, bursts) of about `seconds`, `per_day` on average."""
    p = min(1.0, per_day * step / DAY)
    starts = rng.random(n) < p
    width = max(1, round(seconds / step))
    if width == 1:
        return starts
    c = np.cumsum(starts)
    c[width:] -= c[:-width].copy()
    return c > 0


class ServerModel:
    """The random character of one server (size, load, disks, traffic) and the
    values its agent would send at any times."""

    def __init__(self, specs: list[Spec], seed: int, index: int, tz_hours: float, origin: int):
        self.specs = specs
        self.tz = tz_hours * HOUR
        self.origin = origin
        p = np.random.default_rng([seed, index, 0])
        self.noise = np.random.default_rng([seed, index, 1])
        self.offset = int(p.integers(0, 1 << 30))  # phase of the agent, reduced per interval
        self.cores = int(p.choice([2, 4, 8, 16, 32, 64]))
        self.memory = int(p.choice([4, 8, 16, 32, 64, 128, 256])) << 30
        self.cpu_idle = p.uniform(1, 10)
        self.cpu_busy = p.uniform(5, 60)
        self.load_factor = p.uniform(0.8, 1.4)
        self.mem_base = p.uniform(20, 65)
        self.mem_period = p.uniform(3, 9) * HOUR
        self.mem_phase = p.uniform(0, 2 * np.pi)
        self.swap = p.uniform(0, 15) if p.random() < 0.6 else 0.0
        # Per mountpoint, device and interface, drawn in catalog order.
        self.params: list[dict[str, float]] = []
        for _ in specs:
            self.params.append(
                {
                    "used0": p.uniform(5, 80),
                    "growth": p.uniform(0.02, 0.5),  # percentage points per day
                    "size": float(p.choice([20, 50, 100, 250, 500, 1000, 2000]) << 30),
                    "mean": float(np.exp(p.uniform(np.log(2e4), np.log(8e6)))),
                    "idle": p.uniform(0, 0.4),
                }
            )

    def agent_offset(self, interval: int) -> int:
        return self.offset % interval

    def _activity(self, t: np.ndarray) -> np.ndarray:
        """How busy the server is, 0.35 at night and on weekends up to 1 at 14:00."""
        local = t + self.tz
        shape = 0.5 + 0.5 * np.cos(2 * np.pi * (local / DAY - 14 / 24))
        weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        week = np.where(weekday >= 5, 0.6, 1.0)
        return 0.35 + 0.65 * shape * week

    def values(self, t: np.ndarray, step: float, interval: int, coarse: bool) -> np.ndarray:
        """The values of every series at times `t` (sorted), each point standing
        for `step` seconds, as (series, len(t)), rounded as agents send them."""
        n = len(t)
        rng = self.noise
        scale = COARSE_NOISE if coarse else 1.0
        activity = self._activity(t)
        cpu = self.cpu_idle + self.cpu_busy * activity
        cpu += rng.standard_normal(n) * (0.05 * cpu + 0.3) * scale
        spikes = _events(rng, n, step, per_day=4, seconds=90)
        cpu = np.clip(cpu + spikes * rng.uniform(30, 80, n), 0, 100)
        load1 = self.cores * cpu / 100 * self.load_factor
        load1 = np.abs(load1 + rng.standard_normal(n) * 0.05 * np.sqrt(self.cores) * scale)
        mem = self.mem_base + 8 * activity
        mem += 3 * np.sin(2 * np.pi * t / self.mem_period + self.mem_phase)
        mem = np.clip(mem + rng.standard_normal(n) * 0.2 * scale, 1, 99)
        days = (t - self.origin) / DAY
        cache: dict[tuple[str, str], np.ndarray] = {}
        out = np.empty((len(self.specs), n), dtype=np.float64)
        for i, spec in enumerate(self.specs):
            m = spec.metric
            pr = self.params[i]
            if m == "cpu_usage_percent":
                v = np.round(cpu, 2)
            elif m == "load1":
                v = np.round(load1, 2)
            elif m == "load5":
                v = np.round(_rolling_mean(load1, max(1, round(300 / step))), 2)
            elif m == "load15":
                v = np.round(_rolling_mean(load1, max(1, round(900 / step))), 2)
            elif m == "memory_used_percent":
                v = np.round(mem, 2)
            elif m == "memory_available_bytes":
                # /proc/meminfo counts kB: agents send multiples of 1024.
                v = np.rint(self.memory * (1 - mem / 100) / 1024) * 1024
            elif m == "swap_used_percent":
                drift = 0.5 * np.sin(2 * np.pi * t / (2 * DAY) + self.mem_phase)
                swap = np.clip(self.swap + drift + rng.standard_normal(n) * 0.02, 0, 100)
                v = np.round(swap, 2) if self.swap else np.zeros(n)
            elif m.startswith("filesystem_"):
                used = self._filesystem_used(cache, spec, pr, days, rng, n)
                if m == "filesystem_used_percent":
                    v = np.round(used, 2)
                else:
                    v = np.rint(pr["size"] * (1 - used / 100) / 4096) * 4096
            elif m.startswith("disk_"):
                mean = pr["mean"] * (2.0 if m == "disk_write_bytes_per_second" else 0.5)
                rate = mean * activity * rng.lognormal(0, 0.8, n)
                rate *= rng.random(n) >= pr["idle"]
                burst = _events(rng, n, step, per_day=6, seconds=120)
                rate *= 1 + burst * rng.uniform(4, 20, n)
                v = self._rate(rate, interval, quantum=4096)
            elif m.startswith("network_"):
                mean = pr["mean"] * (0.05 if spec.label("interface") == "lo" else 1.0)
                rate = mean * (0.2 + activity) * rng.lognormal(0, 0.5, n)
                burst = _events(rng, n, step, per_day=8, seconds=30)
                rate *= 1 + burst * rng.uniform(3, 12, n)
                v = self._rate(rate, interval, quantum=1)
            elif m == "up":
                v = np.ones(n)
            else:
                raise ValueError(f"no model for {m}")
            out[i] = v
        return out

    def _filesystem_used(self, cache, spec, pr, days, rng, n) -> np.ndarray:
        """Used percent of a mountpoint, shared by its two series: it grows
        slowly and steadily from the origin of the history."""
        key = ("mountpoint", spec.label("mountpoint"))
        if key not in cache:
            used = pr["used0"] + pr["growth"] * days + rng.standard_normal(n) * 0.005
            cache[key] = np.clip(used, 0, 99.5)
        return cache[key]

    @staticmethod
    def _rate(rate: np.ndarray, interval: int, quantum: int) -> np.ndarray:
        """A per-second rate as an agent derives it from a byte counter: a whole
        number of bytes (of `quantum`) over the interval, to 2 decimals."""
        counted = np.rint(rate * interval / quantum) * quantum
        return np.round(counted / interval, 2)


# -- the tiers ----------------------------------------------------------------


def rollups_from_raw(ts: np.ndarray, values: np.ndarray, width: int, start: int, end: int) -> Tier:
    """Buckets of `width` in [start, end) of every series, computed as
    buckets.aggregate does, series by series."""
    i0, i1 = np.searchsorted(ts, [start, end])
    ts, values = ts[i0:i1], values[:, i0:i1]
    if len(ts) == 0:
        return Tier.concat([], values.shape[0])
    starts = floor(ts, width)
    first = np.concatenate(([0], np.flatnonzero(np.diff(starts)) + 1))
    last = np.append(first[1:], len(ts)) - 1
    return Tier(
        ts=starts[first].astype(np.int64),
        count=np.diff(np.append(first, len(ts))).astype(np.int64),
        min=np.minimum.reduceat(values, first, axis=1),
        max=np.maximum.reduceat(values, first, axis=1),
        sum=np.add.reduceat(values, first, axis=1),
        last=values[:, last],
    )


def simulate_rollups(
    model: ServerModel, width: int, points: int, start: int, end: int, interval: int
) -> Tier:
    """Buckets of `width` in [start, end) simulated at `points` per bucket;
    count is what the agent would have sent in the bucket."""
    buckets = np.arange(start, end, width, dtype=np.int64)
    if len(buckets) == 0:
        return Tier.concat([], len(model.specs))
    step = width / points
    t = (buckets[:, None] + (np.arange(points) + 0.5) * step).ravel()
    v = model.values(t, step, interval, coarse=True).reshape(len(model.specs), len(buckets), points)
    count = width // interval
    return Tier(
        ts=buckets,
        count=np.full(len(buckets), count, dtype=np.int64),
        min=v.min(axis=2),
        max=v.max(axis=2),
        # Each point stands for count / points samples.
        sum=v.sum(axis=2) * (count / points),
        last=v[:, :, -1],
    )


def combine_hours(tier: Tier) -> Tier:
    """1-hour buckets from whole hours of 5-minute buckets (as buckets.combine)."""
    per = HOUR // FIVE_MINUTES
    s, n = tier.min.shape
    hours = n // per

    def shaped(a: np.ndarray) -> np.ndarray:
        return a[:, : hours * per].reshape(s, hours, per)

    return Tier(
        ts=tier.ts[: hours * per : per],
        count=tier.count[: hours * per].reshape(hours, per).sum(axis=1),
        min=shaped(tier.min).min(axis=2),
        max=shaped(tier.max).max(axis=2),
        sum=shaped(tier.sum).sum(axis=2),
        last=shaped(tier.last)[:, :, -1],
    )


def generate_server(
    specs: list[Spec], plan: Plan, seed: int, index: int, location: int = 0
) -> ServerHistory:
    """The whole history of server number `index` (0-based) in location
    number `location` (which sets its time zone)."""
    tz = LOCATION_TZ_HOURS[location % len(LOCATION_TZ_HOURS)]
    model = ServerModel(specs, seed, index, tz, origin=plan.start_1h)
    ts = plan.raw_grid(model.agent_offset(plan.interval))
    values = model.values(ts, plan.interval, plan.interval, coarse=False)
    s = len(specs)
    raw_5m = rollups_from_raw(ts, values, FIVE_MINUTES, plan.raw_start, plan.end_5m)
    raw_1h = rollups_from_raw(ts, values, HOUR, plan.raw_start, plan.end_1h)
    sim_start = plan.sim_5m_start
    sim_5m = simulate_rollups(
        model, FIVE_MINUTES, POINTS_PER_5M, sim_start, plan.raw_start, plan.interval
    )
    sim_1h_from_5m = combine_hours(sim_5m)
    sim_1h = simulate_rollups(
        model, HOUR, POINTS_PER_1H, plan.start_1h, plan.sim_1h_end, plan.interval
    )
    tier_5m = Tier.concat([sim_5m, raw_5m], s).select(plan.start_5m, plan.end_5m)
    tier_1h = Tier.concat([sim_1h, sim_1h_from_5m, raw_1h], s).select(plan.start_1h, plan.end_1h)
    return ServerHistory(ts=ts, values=values, rollup_5m=tier_5m, rollup_1h=tier_1h)


BlockRow = tuple[int, int, int, int, int, bytes]


def encode_blocks(history: ServerHistory, plan: Plan) -> list[BlockRow]:
    """(series index, window start, first_ts, last_ts, count, data) of every
    block below the hot part, window by window, series by series."""
    ts, values = history.ts, history.values
    rows: list[BlockRow] = []
    starts = np.arange(plan.raw_start, plan.hot_start, plan.block_seconds, dtype=np.int64)
    bounds = np.searchsorted(ts, np.append(starts, plan.hot_start))
    for series in range(values.shape[0]):
        for w, start in enumerate(starts.tolist()):
            i0, i1 = int(bounds[w]), int(bounds[w + 1])
            if i1 > i0:
                data = codec.encode(ts[i0:i1], values[series, i0:i1])
                rows.append((series, start, int(ts[i0]), int(ts[i1 - 1]), i1 - i0, data))
    return rows


def hot_part(history: ServerHistory, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Times and (series, samples) values of the samples that stay hot rows."""
    i0 = int(np.searchsorted(history.ts, plan.hot_start))
    return history.ts[i0:], history.values[:, i0:]
