"""Alert evaluation benchmark: seconds per pass of the whole alert engine.

    .venv/bin/python bench/alerts.py [--data-dir DIR] [--database-url URL]
        [--servers 5000] [--passes 10] [--profile FILE] [--json]

1. Setup: --servers servers (locations of 250) with 50 series each, the
   canonical series of `vigil generate_history` plus cpu_cores, one sample
   every 60 s. generate_history's own generator writes the history straight
   into the tiers up to 15 minutes before the first pass (7 hours of raw
   samples and of 5-minute rollups, a day of 1-hour ones); the last 15
   minutes go in through ingest's writer, so that the newest hot rows lie in
   time order as agents leave them, and the 5-minute rollups stop where
   maintenance would have got to. One server in 100 is in trouble (busy CPU,
   full memory, a filling disk, heavy traffic, a removed disk), so that
   about 1 % of the series breach.
2. Rules: the 6 default rules and 14 more (BENCH_RULES).
3. Passes: one `evaluate_alerts(now)` at the end of the data (it creates the
   alerts), then --passes more, each 30 s later. Before each, untimed, that
   half minute's samples go in through ingest's writer and maintenance runs
   (see `maintain`).

Prints the seconds of each pass, and of each rule and each part of a pass:
the first pass, then the median and worst of the others. With
--database-url it works in that PostgreSQL database, which must hold nothing
but this benchmark's data (it deletes every alert and notification there);
without it, in a SQLite database in --data-dir (default: a new temporary
directory). It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vigil.metrics import synthetic  # noqa: E402  (pure numpy: no Django needed)

SERVER_MODEL = synthetic.ServerModel

PREFIX = "bench-alerts-"
RULE_PREFIX = "bench: "
INTERVAL = 60  # seconds between an agent's samples
LOCATION_SIZE = 250
PASS_SECONDS = 30  # the scheduler's ALERT_EVALUATION_INTERVAL_SECONDS
TROUBLE_EVERY = 100  # one server in this many misbehaves
LIVE_SECONDS = 900  # the last minutes before the first pass come through ingest
HOUR = 3600
MB = 1_000_000

# Everything else the default rules do not watch, one of each kind, scope and
# aggregation an operator would write.
BENCH_RULES: list[dict] = [
    {
        "name": "CPU avg 5 min above 85%",
        "metric": "cpu_usage_percent",
        "aggregation": "avg",
        "window_seconds": 300,
        "threshold": 85.0,
        "for_seconds": 120,
    },
    {
        "name": "CPU p95 15 min above 95%",
        "metric": "cpu_usage_percent",
        "aggregation": "p95",
        "window_seconds": 900,
        "threshold": 95.0,
    },
    {
        "name": "Network receive max 10 min above 100 MB/s",
        "metric": "network_receive_bytes_per_second",
        "aggregation": "max",
        "window_seconds": 600,
        "threshold": 100.0 * MB,
    },
    {
        "name": "Disk writes avg 10 min above 200 MB/s",
        "metric": "disk_write_bytes_per_second",
        "aggregation": "avg",
        "window_seconds": 600,
        "threshold": 200.0 * MB,
        "for_seconds": 300,
    },
    {
        "name": "Memory available min 10 min below 256 MiB",
        "metric": "memory_available_bytes",
        "aggregation": "min",
        "window_seconds": 600,
        "operator": "<",
        "threshold": float(256 << 20),
    },
    {
        "name": "Memory rising faster than 0.2 points/min",
        "kind": "rate",
        "metric": "memory_used_percent",
        "window_seconds": 900,
        "threshold": 0.2,
    },
    {
        "name": "File system filling faster than 1 point/h",
        "kind": "rate",
        "metric": "filesystem_used_percent",
        "window_seconds": HOUR,
        "threshold": 1 / 60,
    },
    {
        "name": "Memory full within 2 h",
        "kind": "forecast",
        "metric": "memory_used_percent",
        "window_seconds": HOUR,
        "forecast_seconds": 2 * HOUR,
        "operator": ">=",
        "threshold": 99.0,
    },
    {
        "name": "Disk reads stopped for 10 min",
        "kind": "no_data",
        "metric": "disk_read_bytes_per_second",
        "no_data_seconds": 600,
    },
    {
        "name": "Swap above 50% in dc-1",
        "metric": "swap_used_percent",
        "scope": "location",
        "location": "dc-1",
        "threshold": 50.0,
    },
    {
        "name": "Load5 per core avg 15 min above 1.5 (production)",
        "metric": "load5",
        "aggregation": "avg",
        "window_seconds": 900,
        "per_core": True,
        "scope": "tag",
        "tag": "production",
        "threshold": 1.5,
        "for_seconds": 300,
    },
    {
        "name": "Root file system above 85%",
        "metric": "filesystem_used_percent",
        "matchers": "mountpoint=/",
        "threshold": 85.0,
    },
    {
        "name": "Disk writes p95 10 min above 150 MB/s (sd*, nvme*)",
        "metric": "disk_write_bytes_per_second",
        "matchers": "device=~sd.*|nvme.*",
        "aggregation": "p95",
        "window_seconds": 600,
        "threshold": 150.0 * MB,
    },
    {
        "name": "eth0 receive avg 30 min above 80 MB/s in dc-2",
        "metric": "network_receive_bytes_per_second",
        "matchers": "interface=eth0",
        "aggregation": "avg",
        "window_seconds": 1800,
        "scope": "location",
        "location": "dc-2",
        "threshold": 80.0 * MB,
    },
]


def _django(data_dir: Path, database_url: str | None) -> None:
    os.environ["VIGIL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    # DEBUG off: Django would keep every query of the passes in memory.
    os.environ.setdefault("VIGIL_SECRET_KEY", "bench-only-" + "x" * 40)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


# -- the workload ---------------------------------------------------------------


def specs() -> list:
    """The 49 first series of generate_history's catalog, and cpu_cores
    (which per-core rules divide by)."""
    return [*synthetic.catalog(49), synthetic.Spec("cpu_cores")]


def troubled(index: int, every: int) -> bool:
    return index % every == every // 2


class BenchModel:
    """generate_history's model of one server, plus cpu_cores, and trouble on
    one server in `every`: in the last 30 minutes of the data (and on), CPU at
    97 %, load 3 per core, swap at 60 %, 120 MB/s received on eth0, 300 MB/s
    written to sda; memory climbing 0.25 points a minute to 93 % at `now`; the
    root file system growing 2 points an hour to 92 % at `now`."""

    def __init__(self, specs, seed, index, tz_hours, origin, *, now: int, every: int) -> None:
        self.specs = specs
        self.base = SERVER_MODEL(specs[:-1], seed, index, tz_hours, origin)
        self.now = now
        self.troubled = troubled(index, every)

    def agent_offset(self, interval: int) -> int:
        return self.base.agent_offset(interval)

    def values(self, t: np.ndarray, step: float, interval: int, coarse: bool) -> np.ndarray:
        out = np.vstack(
            [self.base.values(t, step, interval, coarse), np.full((1, len(t)), self.base.cores)]
        )
        if not self.troubled:
            return out
        rng = self.base.noise
        n = len(t)
        late = t >= self.now - 1800
        minutes = (t - self.now) / 60
        for i, spec in enumerate(self.specs):
            labels = dict(spec.labels)
            m = spec.metric
            if m == "cpu_usage_percent":
                new = np.clip(97 + rng.standard_normal(n), 0, 100)
            elif m in ("load1", "load5", "load15"):
                new = self.base.cores * 3 * (1 + 0.02 * rng.standard_normal(n))
            elif m == "swap_used_percent":
                new = 60 + rng.standard_normal(n)
            elif m == "network_receive_bytes_per_second" and labels == {"interface": "eth0"}:
                new = 120 * MB * (1 + 0.05 * rng.standard_normal(n))
            elif m == "disk_write_bytes_per_second" and labels == {"device": "sda"}:
                new = 300 * MB * (1 + 0.05 * rng.standard_normal(n))
            elif m == "memory_used_percent":
                ramp = np.clip(93 + 0.25 * minutes + 0.2 * rng.standard_normal(n), 1, 99.5)
                out[i] = np.round(np.where(minutes >= -60, ramp, out[i]), 2)
                continue
            elif m == "filesystem_used_percent" and labels == {"mountpoint": "/"}:
                fill = np.clip(92 + 2 * minutes / 60, 0, 99.5)
                out[i] = np.round(np.where(minutes >= -360, fill, out[i]), 2)
                continue
            else:
                continue
            out[i] = np.where(late, np.round(new, 2), out[i])
        return out


@dataclass
class Workload:
    """What setup built: the times, who reports what, and what they send next."""

    now: int  # the first pass
    servers: dict[int, str]  # id -> name, in generation order
    silent: set[int]  # series that stopped reporting (the removed disks)
    feeder: Feeder
    setup_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def start_time(wall: float) -> int:
    """The first pass: 1.5 h into a block window, so that 1.5 h of samples
    are hot rows, and ahead of the clock, so that the samples written
    through ingest are not taken for late ones."""
    from django.conf import settings

    from vigil.metrics.buckets import floor

    window = settings.HISTORY_BLOCK_SECONDS
    return int(floor(int(wall) + window - 5400, window)) + 5400


def setup(
    servers: int,
    *,
    passes: int = 10,
    seed: int = 1,
    every: int = TROUBLE_EVERY,
    verbose: bool = True,
    now: int | None = None,
) -> Workload:
    """Build the workload in the current database (migrated), replacing an
    earlier run's; see the module's docstring. `passes`: how many passes
    after the first the agents keep sending samples for."""
    from django.conf import settings
    from django.core.management.base import OutputWrapper
    from django.db import connection, transaction

    from vigil.alerts.models import Alert, Notification, Rule
    from vigil.metrics import rollup, state
    from vigil.metrics.buckets import floor
    from vigil.metrics.management.commands import generate_history as gh
    from vigil.metrics.models import Series
    from vigil.servers.models import Location, Server, Tag

    began = time.perf_counter()
    if Server.objects.exclude(name__startswith=PREFIX).exists():
        raise SystemExit("the database holds other servers: give the benchmark one of its own")
    now = start_time(time.time()) if now is None else now
    # History is generated up to here; the rest arrives through ingest, in
    # time order, as agents send it.
    generated = now - LIVE_SECONDS
    gh.delete_servers(PREFIX)
    Alert.objects.all().delete()
    Notification.objects.all().delete()
    Rule.objects.filter(name__startswith=RULE_PREFIX).delete()
    Rule.objects.update(last_evaluated=None, last_error="")

    plan = synthetic.make_plan(
        generated,
        raw_days=6 / 24,
        days_5m=7 / 24,
        days_1h=1,
        interval=INTERVAL,
        hot_hours=1,
        block_seconds=settings.HISTORY_BLOCK_SECONDS,
    )
    catalog = specs()

    def model(specs_, seed_, index, tz_hours, origin):
        return BenchModel(specs_, seed_, index, tz_hours, origin, now=now, every=every)

    synthetic.ServerModel = model  # generate_server builds each server's model by this name
    try:
        totals = gh.generate(
            plan,
            count=servers,
            specs=catalog,
            seed=seed,
            prefix=PREFIX,
            location_size=LOCATION_SIZE,
            progress=gh.Progress(OutputWrapper(sys.stderr), servers, verbose),
        )
    finally:
        synthetic.ServerModel = SERVER_MODEL

    rows = list(
        Server.objects.filter(name__startswith=PREFIX).order_by("name").values_list("pk", "name")
    )
    series = {
        (s.server_id, s.metric, tuple(sorted(s.labels.items()))): s.pk
        for s in Series.objects.filter(server__name__startswith=PREFIX).only(
            "server_id", "metric", "labels"
        )
    }
    # The troubled servers' sdb was removed 20 minutes before the first pass.
    silent = {
        series[(rows[i][0], metric, (("device", "sdb"),))]
        for i in range(servers)
        if troubled(i, every)
        for metric in ("disk_read_bytes_per_second", "disk_write_bytes_per_second")
        if (rows[i][0], metric, (("device", "sdb"),)) in series
    }
    stopped = now - 1200
    # Where maintenance would have got to: 5-minute buckets settle
    # HISTORY_LATE_SECONDS (and a margin) after they end.
    cutoff = int(
        floor(generated - settings.HISTORY_LATE_SECONDS - rollup.SETTLE_MARGIN_SECONDS, 300)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_rollup5m WHERE ts >= %s", [cutoff])
        cursor.execute("DELETE FROM metrics_rollup1h WHERE ts >= %s", [floor(cutoff, HOUR)])
        if silent:
            marks = ",".join(["%s"] * len(silent))
            cursor.execute(
                f"DELETE FROM metrics_sample WHERE series_id IN ({marks}) AND ts > %s",  # noqa: S608
                [*silent, stopped],
            )
            cursor.execute(
                f"DELETE FROM metrics_rollup5m WHERE series_id IN ({marks}) AND ts >= %s",  # noqa: S608
                [*silent, floor(stopped, 300)],
            )
            for sid in silent:
                cursor.execute(
                    "UPDATE metrics_series SET (last_ts, last_value) = (SELECT ts, value "
                    "FROM metrics_sample WHERE series_id = %s ORDER BY ts DESC LIMIT 1) "
                    "WHERE id = %s",
                    [sid, sid],
                )
        state.put(state.ROLLUP_5M, cutoff)
        state.put(state.ROLLUP_1H, int(floor(cutoff, HOUR)))
        tag, _ = Tag.objects.get_or_create(name="production")
        Server.tags.through.objects.bulk_create(
            [Server.tags.through(server_id=pk, tag_id=tag.pk) for pk, _ in rows[::2]]
        )
        locations = {loc.name: loc for loc in Location.objects.all()}
        for fields in BENCH_RULES:
            fields = dict(fields)
            if "location" in fields:
                name = fields["location"]
                fields["location"] = locations.get(name) or Location.objects.create(name=name)
            if "tag" in fields:
                fields["tag"] = tag
            rule = Rule(**{**fields, "name": RULE_PREFIX + fields["name"]})
            rule.full_clean()
            rule.save()

    tz = synthetic.LOCATION_TZ_HOURS
    models = [
        model(catalog, seed, i, tz[(i // LOCATION_SIZE) % len(tz)], plan.start_1h)
        for i in range(servers)
    ]
    feeder = Feeder(rows, models, series, silent, generated, now + passes * PASS_SECONDS)
    if verbose:
        print(f"the last {LIVE_SECONDS // 60} minutes through ingest ...", flush=True)
    for t in range(generated + PASS_SECONDS, now + 1, PASS_SECONDS):
        maintain(feeder, t)
    return Workload(
        now=now,
        servers=dict(rows),
        silent=silent,
        feeder=feeder,
        setup_seconds=time.perf_counter() - began,
        counts={
            "servers": totals.servers,
            "series": totals.series,
            "raw_samples": totals.raw + feeder.fed,
            "hot_rows": totals.hot + feeder.fed,
            "rollup_5m_rows": totals.rollup_5m,
        },
    )


class Feeder:
    """The samples agents send after the generated history, written through
    ingest's writer half a minute at a time."""

    def __init__(self, servers, models, series, silent, start: int, until: int) -> None:
        self.fed = 0
        # Per server: its sample times in (start, until] and, per series,
        # (server id, name, spec, values).
        self.batches: list[tuple[np.ndarray, list[tuple]]] = []
        for (server_id, name), model in zip(servers, models, strict=True):
            offset = model.agent_offset(INTERVAL)
            first = start - (start - offset) % INTERVAL + INTERVAL
            t = np.arange(first, until + 1, INTERVAL, dtype=np.int64)
            if not len(t):
                continue
            values = model.values(t, INTERVAL, INTERVAL, coarse=False)
            rows = []
            for row, spec in enumerate(model.specs):
                sid = series[(server_id, spec.metric, tuple(sorted(spec.labels)))]
                if sid not in silent:
                    rows.append((server_id, name, spec, values[row].tolist()))
            self.batches.append((t, rows))

    def feed(self, start: int, end: int) -> int:
        """Write the samples in (start, end]; returns how many."""
        from django.db import transaction

        from vigil.ingest import writer
        from vigil.ingest.parsers.base import SeriesPoints

        items = []
        for t, rows in self.batches:
            picked = np.flatnonzero((t > start) & (t <= end)).tolist()
            if not picked:
                continue
            ts = t[picked].tolist()
            for server_id, name, spec, values in rows:
                points = SeriesPoints(
                    name, spec.metric, spec.labels, ts, [values[i] for i in picked]
                )
                items.append((server_id, points))
        with transaction.atomic():
            written = writer.write_now(items)
        self.fed += written
        return written


def maintain(feeder: Feeder, now: int) -> int:
    """What happens in the half minute before a pass in a live installation:
    the agents' samples, then history maintenance (partitions, rollups,
    SQLite's checkpoint). On PostgreSQL, also VACUUM of the series table, of
    which ingest rewrites a row per sample: autovacuum's job, but it is off
    on the benchmark machine, and without it the table bloats pass by pass."""
    from django.db import connection

    from vigil.metrics import partitions, rollup
    from vigil.metrics.tasks import checkpoint_wal

    fed = feeder.feed(now - PASS_SECONDS, now)
    if partitions.supported():
        partitions.ensure(now)
    rollup.run(now)
    if connection.in_atomic_block:
        return fed  # the smoke test's transaction: neither can run inside one
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM metrics_series")
    checkpoint_wal()
    return fed


# -- timing ---------------------------------------------------------------------

RULES_TOTAL = "all rules"
PARTS = {
    "targets": "  of which: the rules' series (fetch.targets)",
    "windows": "  of which: window reads (fetch.window_sums, window_samples)",
    "writes": "  of which: alert rows written (engine._save)",
}
OUTSIDE = {
    "context": "context (down servers, cores)",
    "outages": "location outages",
    "closed": "alerts of disabled rules",
    "dispatch": "dispatch",
}


class Timings:
    """Seconds per pass of each rule and of each part of a pass."""

    def __init__(self) -> None:
        self.pass_no = 0
        self.seconds: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key][self.pass_no] += seconds

    def of(self, key: str, passes: int) -> list[float]:
        return [self.seconds[key].get(k, 0.0) for k in range(passes)]


@contextmanager
def timing(into: Timings) -> Iterator[None]:
    """Time the rules and the parts of evaluate_alerts, by wrapping the
    functions it calls (the engine itself is not changed)."""
    from vigil.alerts import conditions, dispatch, engine, tasks

    def wrap(fn: Callable, key: Callable) -> Callable:
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into.add(key(*args), time.perf_counter() - began)

        return timed

    def rule_key(rule, ctx) -> str:
        return rule.name

    patches = [
        (tasks, "evaluate_rule", rule_key),
        (tasks, "evaluate_locations", lambda *a: OUTSIDE["outages"]),
        (tasks, "context", lambda *a: OUTSIDE["context"]),
        (tasks, "close_disabled", lambda *a: OUTSIDE["closed"]),
        (dispatch, "run", lambda *a: OUTSIDE["dispatch"]),
        (engine.fetch, "targets", lambda *a: PARTS["targets"]),
        (conditions.fetch, "window_sums", lambda *a: PARTS["windows"]),
        (conditions.fetch, "window_samples", lambda *a: PARTS["windows"]),
        (engine, "_save", lambda *a: PARTS["writes"]),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, key in patches:
        setattr(owner, name, wrap(getattr(owner, name), key))
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


@dataclass
class Pass:
    at: int
    seconds: float
    counts: dict[str, int]


def run_passes(
    work: Workload, passes: int, profile: cProfile.Profile | None = None, verbose: bool = True
) -> tuple[list[Pass], Timings]:
    """The first pass at work.now, then `passes` more, 30 s apart, each after
    that half-minute's samples and the maintenance of the rollups."""
    from vigil.alerts.tasks import evaluate_alerts

    timings = Timings()
    done: list[Pass] = []
    with timing(timings):
        for k in range(passes + 1):
            now = work.now + k * PASS_SECONDS
            fed = maintain(work.feeder, now) if k else 0
            timings.pass_no = k
            if profile is not None and k:
                profile.enable()
            began = time.perf_counter()
            counts = evaluate_alerts(now)
            took = time.perf_counter() - began
            if profile is not None and k:
                profile.disable()
            done.append(Pass(now, took, counts))
            if verbose:
                shown = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()) if n)
                print(
                    f"  pass {k:2d} (+{k * PASS_SECONDS:3d} s, {fed:7,} samples fed): "
                    f"{took:6.2f} s  {shown}",
                    flush=True,
                )
    return done, timings


def describe(rule) -> str:
    """The condition of a rule in a few words."""
    if rule.kind == "threshold":
        what = (
            "last"
            if rule.aggregation == "last"
            else f"{rule.aggregation} {rule.window_seconds // 60} min"
        )
    elif rule.kind in ("rate", "forecast"):
        what = f"{rule.kind} {rule.window_seconds // 60} min"
    else:
        what = rule.kind
    if rule.per_core:
        what += " per core"
    if rule.scope != "all":
        what += f", {rule.scope}"
    if rule.matchers:
        what += f", {{{rule.matchers}}}"
    return what


def _stats(times: list[float]) -> tuple[float, float, float]:
    """First pass, median and worst of the later ones, in milliseconds."""
    later = times[1:] or [float("nan")]
    return times[0] * 1000, statistics.median(later) * 1000, max(later) * 1000


def report(work: Workload, passes: list[Pass], timings: Timings) -> dict:
    from django.db import connection
    from django.db.models import Count

    from vigil.alerts import fetch
    from vigil.alerts.models import Alert, Notification, Rule

    n = len(passes)
    steady = [p.seconds for p in passes[1:]]
    firing = dict(
        Alert.objects.filter(state=Alert.State.FIRING)
        .values_list("rule__name")
        .annotate(n=Count("id"))
    )
    result = {
        "database": connection.vendor,
        **work.counts,
        "setup_seconds": work.setup_seconds,
        "first_pass": passes[0].seconds,
        "steady_median": statistics.median(steady) if steady else None,
        "steady_worst": max(steady) if steady else None,
        "passes": [{"at": p.at, "seconds": p.seconds, "counts": p.counts} for p in passes],
        "alerts_firing": Alert.objects.filter(state=Alert.State.FIRING).count(),
        "alerts_pending": Alert.objects.filter(state=Alert.State.PENDING).count(),
        "notifications": Notification.objects.count(),
        "rules": [],
        "parts": [],
    }
    print()
    print(
        f"{connection.vendor}: {work.counts['servers']:,} servers, {work.counts['series']:,} "
        f"series; setup {work.setup_seconds:.0f} s"
    )
    print(
        f"first pass {passes[0].seconds:.2f} s; {len(steady)} later passes: median "
        f"{result['steady_median'] or 0:.2f} s, worst {result['steady_worst'] or 0:.2f} s"
    )
    print(
        f"at the end: {result['alerts_firing']} alerts firing, {result['alerts_pending']} "
        f"pending, {result['notifications']} notifications queued"
    )
    print()
    print(
        f"{'rule':50} {'condition':36} {'series':>7} {'first':>7} {'median':>7} {'worst':>7} "
        f"{'firing':>6}"
    )
    rules = list(Rule.objects.filter(enabled=True).order_by("pk"))
    for rule in rules:
        first, med, worst = _stats(timings.of(rule.name, n))
        short = rule.name.removeprefix(RULE_PREFIX)
        what, count = describe(rule), len(fetch.targets(rule))
        print(
            f"{short[:50]:50} {what[:36]:36} {count:7} {first:7.0f} {med:7.0f} {worst:7.0f} "
            f"{firing.get(rule.name, '') or '':>6}"
        )
        result["rules"].append(
            {
                "rule": short,
                "condition": what,
                "series": count,
                "first_ms": first,
                "median_ms": med,
                "worst_ms": worst,
                "firing": firing.get(rule.name, 0),
            }
        )
    print()
    print(f"{'part of a pass':66} {'first':>7} {'median':>7} {'worst':>7}")
    all_rules = [sum(x) for x in zip(*(timings.of(r.name, n) for r in rules), strict=True)]
    parts = [(RULES_TOTAL, all_rules)]
    parts += [(label, timings.of(label, n)) for label in PARTS.values()]
    parts += [(label, timings.of(label, n)) for label in OUTSIDE.values()]
    parts.append(("whole pass", [p.seconds for p in passes]))
    for label, times in parts:
        first, med, worst = _stats(times)
        print(f"{label:66} {first:7.0f} {med:7.0f} {worst:7.0f}")
        result["parts"].append(
            {"part": label.strip(), "first_ms": first, "median_ms": med, "worst_ms": worst}
        )
    print("(milliseconds: the first pass, then the median and worst of the later passes)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="SQLite: where the database goes")
    parser.add_argument("--database-url", help="postgres://... of a database of its own")
    parser.add_argument("--servers", type=int, default=5000)
    parser.add_argument("--passes", type=int, default=10, help="passes after the first (10)")
    parser.add_argument("--profile", type=Path, help="cProfile the later passes into FILE")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Without --data-dir, a temporary one, removed at exit.
    scratch = None if args.data_dir else tempfile.TemporaryDirectory(prefix="vigil-bench-alerts-")
    data_dir = args.data_dir or Path(scratch.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    _django(data_dir, args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"setting up {args.servers:,} servers x 50 series ...", flush=True)
    work = setup(args.servers, passes=args.passes)
    profile = cProfile.Profile() if args.profile else None
    passes, timings = run_passes(work, args.passes, profile)
    result = report(work, passes, timings)
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"\nprofile of the later passes in {args.profile}; the top by cumulative time:")
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(30)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
