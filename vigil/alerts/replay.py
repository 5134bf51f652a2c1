"""A week of agent data with injected incidents, replayed through the alert engine.

The scenario is plain data: 50 servers in 5 locations, each reporting the
canonical metrics of Vigil's agent every TICK seconds, and a list of incidents
at known times. `run` replays it on a simulated clock, as production would
live it, only slower; at every tick (5 minutes):

1. the servers that report send their samples through the real writer, in one
   batch for all of them; an agent back from an outage sends its spool first,
   with the old timestamps;
2. `update_up(now)` marks overdue servers down and writes `up`;
3. at every other tick (10 minutes), `evaluate_alerts(now)` runs every rule
   and queues the notifications: as in production, where agents report every
   10 s and rules run every 30 s, an evaluation sees several samples;
4. the operator's scheduled actions run (an acknowledgement).

tests/test_alert_replay.py asserts the notifications it produces, and
`summary` prints them next to the incidents that caused them.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.db import transaction

from vigil.ingest.parsers.base import SeriesPoints
from vigil.servers.models import Location, Server

TICK = 300  # agents report every 5 minutes
EVALUATE_EVERY = 2  # ticks: rules run every 10 minutes
DAY = 86400
TICKS = 7 * DAY // TICK
START = 1_740_960_000  # Monday 2025-03-03 00:00 UTC
LOCATIONS = ("ams", "fra", "lon", "nyc", "sfo")
PER_LOCATION = 10
SERVERS = tuple(f"{loc}-{i:02d}" for loc in LOCATIONS for i in range(1, PER_LOCATION + 1))
CORES = (2, 4, 8, 16)
# Agents are not in step: each reports up to a minute before the evaluation.
PHASES = tuple((i * 7) % 60 for i in range(len(SERVERS)))
ROOT = (("mountpoint", "/"),)

# Rules the replay adds to the six defaults (see `add_rules`).
FLAP_RULE = "Memory above 90% (no hold)"
NO_DATA_RULE = "CPU metric missing"


def tick_of(day: int, hour: int, minute: int = 0) -> int:
    """The tick at day/hour/minute of the simulated week (day 0 is Monday)."""
    return (day * DAY + hour * 3600 + minute * 60) // TICK


def moment(tick: int) -> int:
    return START + tick * TICK


def label(ts: float) -> str:
    """'d HH:MM' of a time in the simulated week, for tables and messages."""
    seconds = int(ts) - START
    return f"{seconds // DAY} {seconds % DAY // 3600:02d}:{seconds % 3600 // 60:02d}"


@dataclass(frozen=True)
class Incident:
    """Something that happens to some servers from tick `start` until before `end`."""

    key: str
    text: str
    servers: tuple[str, ...]
    start: int
    end: int
    location: str = ""  # set when the incident is a location's

    def active(self, tick: int) -> bool:
        return self.start <= tick < self.end

    def subjects(self) -> set[str]:
        return set(self.servers) | ({f"location {self.location}"} if self.location else set())


DISK_GROWTH = tick_of(2, 0)
# Full 36 h and 150 s after the growth starts: the forecast and the threshold
# are crossed between two ticks, never exactly at one.
DISK_FULL_SECONDS = 36 * 3600 + TICK // 2
DISK_CLEANUP = tick_of(3, 9)

INCIDENTS = (
    Incident(
        "cpu_spike",
        "CPU at 99% for one sample, shorter than the rule's 5 min",
        ("ams-02",),
        tick_of(0, 10),
        tick_of(0, 10, 5),
    ),
    Incident(
        "cpu_sustained",
        "CPU at 95% for 30 min",
        ("fra-03",),
        tick_of(1, 9),
        tick_of(1, 9, 30),
    ),
    Incident(
        "cpu_group",
        "CPU at 97% on three servers, same minute, 30 min",
        ("ams-04", "lon-05", "sfo-06"),
        tick_of(1, 14),
        tick_of(1, 14, 30),
    ),
    Incident(
        "disk_filling",
        "/ fills from 40% towards 100% in 36 h; cleaned up at 95%",
        ("nyc-07",),
        DISK_GROWTH,
        DISK_CLEANUP,
    ),
    Incident(
        "server_down",
        "stops reporting for 1 h, then re-sends its spool (CPU at 99% in it)",
        ("lon-02",),
        tick_of(4, 3),
        tick_of(4, 4),
    ),
    Incident(
        "location_outage",
        "8 of 10 servers of fra down for 30 min, then re-send their spool",
        tuple(f"fra-{i:02d}" for i in range(1, 9)),
        # Silent from just before an evaluation: a 30-min outage then spans
        # the three it takes to page (down, held 2 min, group wait).
        tick_of(4, 19, 55),
        tick_of(4, 20, 25),
        location="fra",
    ),
    Incident(
        "flapping",
        "memory 95% / 80% at every other evaluation for 2 h",
        ("sfo-09",),
        tick_of(5, 8),
        tick_of(5, 10),
    ),
    Incident(
        "load_long",
        "load 2.5 per core for 9 h (two reminders)",
        ("ams-08",),
        tick_of(5, 18),
        tick_of(6, 3),
    ),
    Incident(
        "cpu_missing",
        "the agent's CPU reading breaks for 40 min; the rest keeps coming",
        ("ams-09",),
        tick_of(6, 12),
        tick_of(6, 12, 40),
    ),
)
BY_KEY = {i.key: i for i in INCIDENTS}
OUTAGES = (BY_KEY["server_down"], BY_KEY["location_outage"])
# The operator acknowledges the disk forecast once paged: no reminders for it.
ACKNOWLEDGE_AT = tick_of(2, 12, 40)


class Week:
    """The metrics of every server at every tick, incidents applied: arrays
    of shape (ticks, servers), computed once with a fixed seed."""

    def __init__(self, ticks: int = TICKS, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        n = len(SERVERS)
        k = np.arange(ticks)[:, None]
        self.ts = START + k * TICK - np.array(PHASES)[None, :]
        day = 2 * np.pi * ((k * TICK) % DAY) / DAY
        busy = np.maximum(0.0, -np.cos(day))  # daytime load, peaking at noon
        self.cores = np.array([CORES[i % len(CORES)] for i in range(n)], dtype=np.float64)
        self.cpu = np.round(10 + 35 * busy + rng.uniform(0, 8, (ticks, n)), 1)
        self.memory = np.round(45 + 10 * busy + rng.uniform(0, 5, (ticks, n)), 1)
        base = 30 + np.arange(n) % 7 * 5  # 30% to 60% full, growing 0.05% a day
        self.disk = np.round(base + 0.05 * k * TICK / DAY + rng.uniform(0, 0.1, (ticks, n)), 2)
        self.load = np.round(self.cores * self.cpu / 100 * 1.2, 2)
        self._inject(ticks)

    def _inject(self, ticks: int) -> None:
        def at(key: str) -> tuple[slice, list[int]]:
            incident = BY_KEY[key]
            rows = slice(incident.start, min(incident.end, ticks))
            return rows, [SERVERS.index(s) for s in incident.servers]

        self.cpu[at("cpu_spike")] = 99.0
        self.cpu[at("cpu_sustained")] = 95.0
        self.cpu[at("cpu_group")] = 97.0
        # The server that goes silent was overloaded: its spool, sent late,
        # holds CPU at 99%. Old samples must not page as if they were new.
        self.cpu[at("server_down")] = 99.0
        disk = BY_KEY["disk_filling"]
        j = SERVERS.index(disk.servers[0])
        # Linear in the samples' own timestamps, so that the trend is exact.
        growth = np.maximum(0, self.ts[:, j] - moment(disk.start))
        filling = 40.0 + 60.0 * growth / DISK_FULL_SECONDS
        self.disk[:, j] = np.where(np.arange(ticks) < disk.end, filling, 45.0)
        flap = BY_KEY["flapping"]
        j = SERVERS.index(flap.servers[0])
        for tick in range(flap.start, min(flap.end, ticks)):
            crossing = (tick - flap.start) // EVALUATE_EVERY % 2 == 0
            self.memory[tick, j] = 95.0 if crossing else 80.0
        rows, (j,) = at("load_long")
        self.load[rows, j] = 2.5 * self.cores[j]

    def samples(self, tick: int, j: int) -> list[tuple[str, tuple, float]]:
        """What the agent of server j measured at `tick`: (metric, labels, value)."""
        out = [
            ("memory_used_percent", (), float(self.memory[tick, j])),
            ("filesystem_used_percent", ROOT, float(self.disk[tick, j])),
            ("load1", (), float(self.load[tick, j])),
            ("cpu_cores", (), float(self.cores[j])),
        ]
        missing = BY_KEY["cpu_missing"]
        if not (missing.active(tick) and SERVERS[j] in missing.servers):
            out.insert(0, ("cpu_usage_percent", (), float(self.cpu[tick, j])))
        return out


def reporting(tick: int, name: str) -> bool:
    return not any(o.active(tick) and name in o.servers for o in OUTAGES)


def spooled(tick: int, name: str) -> range:
    """Ticks an agent back at `tick` re-sends from its spool (empty if none)."""
    for outage in OUTAGES:
        if outage.end == tick and name in outage.servers:
            return range(outage.start, outage.end)
    return range(0)


def batch(week: Week, tick: int, server_ids: dict[str, int]) -> list:
    """One writer batch: every reporting server's samples of `tick`, spool first."""
    per_series: dict[tuple[int, str, tuple], tuple[list[int], list[float]]] = {}
    for j, name in enumerate(SERVERS):
        if not reporting(tick, name):
            continue
        for t in [*spooled(tick, name), tick]:
            ts = int(week.ts[t, j])
            for metric, labels, value in week.samples(t, j):
                points = per_series.setdefault((server_ids[name], metric, labels), ([], []))
                points[0].append(ts)
                points[1].append(value)
    return [
        (server_id, SeriesPoints(None, metric, labels, ts, values))
        for (server_id, metric, labels), (ts, values) in per_series.items()
    ]


class _Clock:
    """Stands in for the `time` or `timezone` module inside the writer."""

    def __init__(self, module, now: Callable[[], float]) -> None:
        self._module = module
        self._now = now

    def time(self) -> float:
        return self._now()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now(), tz=UTC)

    def __getattr__(self, name: str):
        return getattr(self._module, name)


@contextmanager
def writer_clock(now: Callable[[], float]):
    """The writer stamps `last_seen` and tells late samples by the wall clock;
    in a replay its clock is the simulated one, so that servers go up and
    down on simulated time as they would on real time."""
    from django.utils import timezone

    from vigil.ingest import writer

    saved = writer.time, writer.timezone
    writer.time, writer.timezone = _Clock(_time, now), _Clock(timezone, now)
    try:
        yield
    finally:
        writer.time, writer.timezone = saved


def setup() -> dict[str, int]:
    """Locations, servers, the default rules and the two the defaults lack;
    returns server ids by name."""
    from django.apps import apps

    from vigil.alerts.defaults import create_default_rules

    # The migration made them, but a test database flushed by an earlier
    # transactional test has lost them.
    create_default_rules(apps, None)
    locations = {name: Location.objects.create(name=name) for name in LOCATIONS}
    Server.objects.bulk_create(
        Server(
            name=name,
            host_name=name,
            location=locations[name.split("-")[0]],
            created=datetime.fromtimestamp(START - DAY, tz=UTC),
        )
        for name in SERVERS
    )
    add_rules()
    return _ids()


def _ids() -> dict[str, int]:
    return dict(Server.objects.filter(name__in=SERVERS).values_list("name", "pk"))


def add_rules() -> None:
    from vigil.alerts.models import Rule

    # The default memory rule holds 5 min, so a metric that crosses 90% every
    # sample never even fires there; a rule without a hold shows flapping.
    Rule.objects.create(
        name=FLAP_RULE,
        kind=Rule.Kind.THRESHOLD,
        metric="memory_used_percent",
        operator=">",
        threshold=90.0,
        for_seconds=0,
        description="Memory of {server} at {value}%.",
    )
    # No default rule watches for a missing metric: this one shows that a
    # broken collector pages, and that a server that is down does not page
    # once per series.
    Rule.objects.create(
        name=NO_DATA_RULE,
        kind=Rule.Kind.NO_DATA,
        metric="cpu_usage_percent",
        no_data_seconds=600,
        for_seconds=0,
        description="{server} sent no CPU reading for 10 minutes.",
    )


def operator_actions(tick: int, now: float) -> None:
    """What the person on call does: acknowledge the disk forecast once paged."""
    if tick != ACKNOWLEDGE_AT:
        return
    from django.contrib.auth import get_user_model

    from vigil.alerts.dispatch import acknowledge
    from vigil.alerts.models import Alert

    user, _ = get_user_model().objects.get_or_create(username="oncall")
    alert = Alert.objects.get(
        rule__name="File system full within 24 h", server__name=BY_KEY["disk_filling"].servers[0]
    )
    acknowledge(alert, user, "cleaning up the logs", datetime.fromtimestamp(now, tz=UTC))


def run(
    ticks: int = TICKS, on_tick: Callable[[int, float, dict], None] | None = None
) -> dict[str, float]:
    """Replay the week on a database prepared by `setup`; returns seconds spent
    writing, marking servers up and down, and evaluating."""
    from vigil.alerts.tasks import evaluate_alerts
    from vigil.ingest import writer
    from vigil.servers.tasks import update_up

    server_ids = _ids()
    week = Week(ticks)
    clock = {"now": float(START)}
    spent = {"write": 0.0, "up": 0.0, "evaluate": 0.0}
    with writer_clock(lambda: clock["now"]):
        for tick in range(ticks):
            now = float(moment(tick))
            clock["now"] = now
            began = _time.perf_counter()
            items = batch(week, tick, server_ids)
            with transaction.atomic():
                writer.write_now(items)
            wrote = _time.perf_counter()
            update_up(now)
            upped = _time.perf_counter()
            counts = evaluate_alerts(now) if tick % EVALUATE_EVERY == 0 else {}
            operator_actions(tick, now)
            spent["write"] += wrote - began
            spent["up"] += upped - wrote
            spent["evaluate"] += _time.perf_counter() - upped
            if on_tick is not None:
                on_tick(tick, now, counts)
    return spent


@dataclass(frozen=True)
class Sent:
    """One queued notification, as the assertions and the summary see it."""

    at: float
    kind: str
    rule: str
    subjects: tuple[str, ...]
    items: tuple[dict, ...]


def sent() -> list[Sent]:
    """Every queued notification, oldest first."""
    from vigil.alerts.models import Notification

    out = []
    for n in Notification.objects.select_related("rule").order_by("created", "id"):
        subjects = sorted(item["server"] or f"location {item['location']}" for item in n.items)
        out.append(
            Sent(n.created.timestamp(), n.kind, n.rule.name, tuple(subjects), tuple(n.items))
        )
    return out


def incident_of(notification: Sent) -> str:
    """The incident a notification belongs to, by its servers (or location)."""
    for incident in INCIDENTS:
        if set(notification.subjects) <= incident.subjects():
            return incident.key
    return "?"


def summary(notifications: list[Sent]) -> str:
    """A table of the incidents and the notifications each produced."""
    lines = [f"{'incident':<16} {'when':<8} {'kind':<13} {'rule':<28} subjects"]
    found: dict[str, list[Sent]] = {i.key: [] for i in INCIDENTS}
    for n in notifications:
        found.setdefault(incident_of(n), []).append(n)
    for key, sent_for in found.items():
        if not sent_for:
            lines.append(f"{key:<16} {'-':<8} (none)")
        for n in sent_for:
            who = ", ".join(n.subjects)
            lines.append(f"{key:<16} {label(n.at):<8} {n.kind:<13} {n.rule:<28} {who}")
    return "\n".join(lines)
