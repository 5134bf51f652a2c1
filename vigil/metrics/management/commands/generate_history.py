"""`vigil generate_history`: synthetic servers with weeks of history, for
benchmarks and demos.

The data comes from vigil.metrics.synthetic (pure numpy); this command creates
the locations, servers and series and writes every tier straight into its
table in bulk: multi-row INSERTs in large transactions on SQLite, binary COPY
on PostgreSQL. A chunk of servers is generated in a worker thread while the
previous one is written, so that numpy and the database work at the same time.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from vigil.metrics import partitions, state, synthetic
from vigil.metrics.models import Series, labels_key
from vigil.servers.models import Location, Server

TIER_TABLES = ["metrics_sample", "metrics_block", "metrics_rollup5m", "metrics_rollup1h"]
ROLLUP_COLUMNS = ["series_id", "ts", "min", "max", "sum", "count", "last"]
ROLLUP_TYPES = ["int4", "int8", "float8", "float8", "float8", "int4", "float8"]
# About this many raw samples per chunk of servers (and per transaction).
SAMPLES_PER_CHUNK = 6_000_000
# Rows per multi-row INSERT on SQLite (below its 32766 parameters) and rows
# turned into Python objects at once.
SQLITE_ROWS_PER_STATEMENT = 1000
ROWS_PER_BATCH = 250_000


@dataclass
class Generated:
    """One server's history, ready to write."""

    index: int
    location: int
    history: synthetic.ServerHistory
    blocks: list[synthetic.BlockRow]


@dataclass
class Totals:
    servers: int = 0
    series: int = 0
    raw: int = 0
    hot: int = 0
    blocks: int = 0
    block_bytes: int = 0
    rollup_5m: int = 0
    rollup_1h: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return self.hot + self.blocks + self.rollup_5m + self.rollup_1h + self.series


class Progress:
    """One line on stderr, rewritten in place: done/total, rate and time left."""

    def __init__(self, out, total: int, enabled: bool) -> None:
        self.out, self.total, self.enabled = out, total, enabled
        self.started = time.monotonic()
        self.shown = 0.0
        self.shown_done = -1

    def update(self, done: int, samples: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.5 and not force):
            return
        if force and done == self.shown_done:
            return
        self.shown, self.shown_done = now, done
        elapsed = max(now - self.started, 1e-9)
        eta = elapsed / done * (self.total - done) if done else 0.0
        line = (
            f"\r{done}/{self.total} servers {100 * done / self.total:3.0f}% | "
            f"{samples / 1e6:,.1f} M raw samples, {samples / elapsed / 1e6:,.2f} M/s | "
            f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}  "
        )
        self.out.write(line, ending="")
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("")


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Command(BaseCommand):
    help = (
        "Create synthetic servers with realistic history in every tier "
        "(raw blocks, hot rows, 5-minute and 1-hour rollups), for benchmarks and demos."
    )

    def add_arguments(self, parser):
        parser.add_argument("--servers", type=int, default=50, help="servers (default 50)")
        parser.add_argument("--series", type=int, default=50, help="series per server (50)")
        parser.add_argument("--raw-days", type=float, default=2, help="days of raw samples (2)")
        parser.add_argument("--days-5m", type=float, default=7, help="days of 5-minute rollups")
        parser.add_argument("--days-1h", type=float, default=30, help="days of 1-hour rollups")
        parser.add_argument("--interval", type=int, default=10, help="seconds between samples")
        parser.add_argument(
            "--hot-hours",
            type=float,
            default=2,
            help="the newest hours stay hot rows (from the start of their block window)",
        )
        parser.add_argument(
            "--location-size", type=int, default=200, help="servers per location (dc-1, dc-2, ...)"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
        parser.add_argument("--prefix", default="synthetic-", help="server name prefix")
        parser.add_argument(
            "--now", type=int, help="end of the history, unix seconds (default: the current time)"
        )
        parser.add_argument(
            "--replace", action="store_true", help="delete the servers with the prefix first"
        )

    def handle(self, *args, **opts):
        count, per_server = opts["servers"], opts["series"]
        if count < 1 or per_server < 1 or opts["location_size"] < 1:
            raise CommandError("--servers, --series and --location-size must be at least 1")
        prefix = opts["prefix"]
        if not prefix:
            raise CommandError("--prefix must not be empty")
        try:
            plan = synthetic.make_plan(
                int(opts["now"] if opts["now"] is not None else time.time()),
                raw_days=opts["raw_days"],
                days_5m=opts["days_5m"],
                days_1h=opts["days_1h"],
                interval=opts["interval"],
                hot_hours=opts["hot_hours"],
                block_seconds=settings.HISTORY_BLOCK_SECONDS,
            )
        except ValueError as e:
            raise CommandError(str(e)) from e
        existing = Server.objects.filter(name__startswith=prefix).count()
        if existing and not opts["replace"]:
            raise CommandError(
                f"{existing} servers named {prefix}* exist already; "
                "use --replace to delete them (and their history) first"
            )
        verbose = opts["verbosity"] > 0
        if existing:
            started = time.monotonic()
            delete_servers(prefix)
            if verbose:
                self.stderr.write(
                    f"Deleted {existing} servers named {prefix}* "
                    f"in {time.monotonic() - started:.1f} s"
                )

        totals = generate(
            plan,
            count=count,
            specs=synthetic.catalog(per_server),
            seed=opts["seed"],
            prefix=prefix,
            location_size=opts["location_size"],
            progress=Progress(self.stderr, count, verbose),
        )
        if verbose:
            self.stdout.write(summary(totals, plan))


def generate(
    plan: synthetic.Plan,
    *,
    count: int,
    specs: list[synthetic.Spec],
    seed: int,
    prefix: str,
    location_size: int,
    progress: Progress,
) -> Totals:
    """Generate and write `count` servers, a chunk at a time, then set the watermarks."""
    totals = Totals()
    locations = _locations([i // location_size for i in range(count)])
    width = max(3, len(str(count)))
    samples = len(specs) * len(plan.raw_grid(0))
    per_chunk = max(1, SAMPLES_PER_CHUNK // max(samples, 1))
    chunks = [list(range(i, min(i + per_chunk, count))) for i in range(0, count, per_chunk)]

    def make(indexes: list[int]) -> list[Generated]:
        out = []
        for i in indexes:
            history = synthetic.generate_server(specs, plan, seed, i, i // location_size)
            out.append(Generated(i, i // location_size, history, []))
            out[-1].blocks = synthetic.encode_blocks(history, plan)
        return out

    if partitions.supported():
        # The hot rows go straight into their windows' partitions, as ingest's would.
        partitions.ensure(plan.now)
        for start in range(plan.hot_start, plan.now, plan.block_seconds):
            partitions.create(start)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate") as pool:
        pending: Future | None = pool.submit(make, chunks[0]) if chunks else None
        for n, _ in enumerate(chunks):
            done = pending.result()
            pending = pool.submit(make, chunks[n + 1]) if n + 1 < len(chunks) else None
            with transaction.atomic():
                _write_chunk(done, specs, plan, prefix, width, locations, totals)
            progress.update(totals.servers, totals.raw)
    progress.update(totals.servers, totals.raw, force=True)
    progress.close()

    state.put(state.ROLLUP_5M, plan.end_5m)
    state.put(state.ROLLUP_1H, plan.end_1h)
    state.put(state.COMPACTED, plan.hot_start)
    _settle()
    return totals


def _locations(numbers: list[int]) -> dict[int, Location]:
    """Location number -> row, named dc-1, dc-2, ...; created when missing."""
    names = {n: f"dc-{n + 1}" for n in sorted(set(numbers))}
    have = {loc.name: loc for loc in Location.objects.filter(name__in=names.values())}
    Location.objects.bulk_create(
        [Location(name=name) for name in names.values() if name not in have]
    )
    have = {loc.name: loc for loc in Location.objects.filter(name__in=names.values())}
    return {n: have[name] for n, name in names.items()}


def _write_chunk(
    chunk: list[Generated],
    specs: list[synthetic.Spec],
    plan: synthetic.Plan,
    prefix: str,
    width: int,
    locations: dict[int, Location],
    totals: Totals,
) -> None:
    """Create the chunk's servers and series, then write their tiers, in
    (series_id, ts) order: the new ids are the largest, so every insert
    appends to the tables' b-trees."""
    created = datetime.fromtimestamp(plan.start_1h, UTC)
    servers = Server.objects.bulk_create(
        [
            Server(
                name=f"{prefix}{g.index + 1:0{width}d}",
                host_name=f"{prefix}{g.index + 1:0{width}d}",
                location=locations[g.location],
                status=Server.Status.UP,
                created=created,
                last_seen=datetime.fromtimestamp(int(g.history.ts[-1]), UTC),
            )
            for g in chunk
        ]
    )
    rows = []
    for server, g in zip(servers, chunk, strict=True):
        last_ts = int(g.history.ts[-1])
        for spec, value in zip(specs, g.history.values[:, -1].tolist(), strict=True):
            rows.append(
                Series(
                    server=server,
                    metric=spec.metric,
                    labels=dict(spec.labels),
                    # bulk_create skips save(), which fills this in.
                    labels_key=labels_key(spec.labels),
                    last_ts=last_ts,
                    last_value=value,
                )
            )
    series = Series.objects.bulk_create(rows)
    ids = np.array([s.pk for s in series], dtype=np.int64).reshape(len(chunk), len(specs))
    if not (np.diff(ids.ravel()) > 0).all():
        raise RuntimeError("series ids came back out of order")

    blocks = []
    for g, sids in zip(chunk, ids, strict=True):
        blocks.extend((int(sids[r[0]]), *r[1:]) for r in g.blocks)
        totals.block_bytes += sum(len(r[5]) for r in g.blocks)
    _insert_blocks(blocks)

    hot = [synthetic.hot_part(g.history, plan) for g in chunk]
    _insert(
        "metrics_sample",
        ["series_id", "ts", "value"],
        ["int4", "int8", "float8"],
        [
            np.concatenate(
                [np.repeat(sids, len(ts)) for sids, (ts, _) in zip(ids, hot, strict=True)]
            ),
            np.concatenate(
                [np.tile(ts, len(sids)) for sids, (ts, _) in zip(ids, hot, strict=True)]
            ),
            np.concatenate([v.ravel() for _, v in hot]),
        ],
    )
    for attr, table in (("rollup_5m", "metrics_rollup5m"), ("rollup_1h", "metrics_rollup1h")):
        tiers = [getattr(g.history, attr) for g in chunk]
        _insert(table, ROLLUP_COLUMNS, ROLLUP_TYPES, _rollup_columns(ids, tiers))
        setattr(totals, attr, getattr(totals, attr) + sum(t.min.size for t in tiers))

    totals.servers += len(chunk)
    totals.series += len(series)
    totals.raw += sum(g.history.raw_samples for g in chunk)
    totals.hot += sum(v.size for _, v in hot)
    totals.blocks += len(blocks)


def _rollup_columns(ids: np.ndarray, tiers: list[synthetic.Tier]) -> list[np.ndarray]:
    n = [len(t) for t in tiers]
    return [
        np.concatenate([np.repeat(sids, k) for sids, k in zip(ids, n, strict=True)]),
        np.concatenate([np.tile(t.ts, len(sids)) for sids, t in zip(ids, tiers, strict=True)]),
        *(np.concatenate([getattr(t, a).ravel() for t in tiers]) for a in ("min", "max", "sum")),
        np.concatenate([np.tile(t.count, len(sids)) for sids, t in zip(ids, tiers, strict=True)]),
        np.concatenate([t.last.ravel() for t in tiers]),
    ]


# -- bulk writing --------------------------------------------------------------


def _insert(table: str, columns: list[str], types: list[str], arrays: list[np.ndarray]) -> None:
    if len(arrays[0]) == 0:
        return
    if connection.vendor == "postgresql":
        _copy_binary(table, columns, types, arrays)
    else:
        _insert_sqlite(table, columns, arrays)


def _insert_sqlite(table: str, columns: list[str], arrays: list[np.ndarray]) -> None:
    """Multi-row INSERTs through the driver itself: Django's cursor would
    rewrite the placeholders of every statement."""
    connection.ensure_connection()
    db = connection.connection
    k = len(columns)
    per = SQLITE_ROWS_PER_STATEMENT
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
    full_sql = head + ",".join(["(" + ",".join("?" * k) + ")"] * per)
    n = len(arrays[0])
    for b0 in range(0, n, ROWS_PER_BATCH):
        b1 = min(n, b0 + ROWS_PER_BATCH)
        # Interleaved row values as one list: slice assignment does it in C.
        flat: list = [None] * ((b1 - b0) * k)
        for j, a in enumerate(arrays):
            flat[j::k] = a[b0:b1].tolist()
        full = (b1 - b0) // per * per
        db.executemany(full_sql, (flat[i * k : (i + per) * k] for i in range(0, full, per)))
        if full < b1 - b0:
            rest = b1 - b0 - full
            db.execute(head + ",".join(["(" + ",".join("?" * k) + ")"] * rest), flat[full * k :])


_PG_DTYPES = {"int4": ">i4", "int8": ">i8", "float8": ">f8"}
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_PG_TRAILER = b"\xff\xff"
COPY_WRITE_BYTES = 8 << 20


def _copy_binary(table: str, columns: list[str], types: list[str], arrays: list[np.ndarray]):
    """Binary COPY whose rows numpy lays out directly: a field count, then a
    length and a big-endian value per column."""
    fields = [("n", ">i2")]
    for name, kind in zip(columns, types, strict=True):
        fields += [(f"{name}_size", ">i4"), (name, _PG_DTYPES[kind])]
    rows = np.empty(len(arrays[0]), dtype=np.dtype(fields))
    rows["n"] = len(columns)
    for name, kind, a in zip(columns, types, arrays, strict=True):
        rows[f"{name}_size"] = np.dtype(_PG_DTYPES[kind]).itemsize
        rows[name] = a
    data = memoryview(rows.view(np.uint8))
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with cursor.cursor.copy(sql) as copy:
            copy.write(_PG_SIGNATURE)
            for i in range(0, len(data), COPY_WRITE_BYTES):
                copy.write(data[i : i + COPY_WRITE_BYTES])
            copy.write(_PG_TRAILER)


def _insert_blocks(blocks: list[tuple]) -> None:
    if not blocks:
        return
    columns = "series_id, start, first_ts, last_ts, count, data"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            sql = f"COPY metrics_block ({columns}) FROM STDIN (FORMAT BINARY)"
            with cursor.cursor.copy(sql) as copy:
                copy.set_types(["int4", "int8", "int8", "int8", "int4", "bytea"])
                for row in blocks:
                    copy.write_row(row)
    else:
        connection.ensure_connection()
        connection.connection.executemany(
            f"INSERT INTO metrics_block ({columns}) VALUES (?,?,?,?,?,?)",  # noqa: S608
            blocks,
        )


def _settle() -> None:
    """Leave the database as a benchmark expects to find it: vacuumed (hint
    bits set, visibility map for index-only scans) and analyzed on PostgreSQL,
    so that autovacuum does not start on it mid-benchmark; the write-ahead log
    folded into the file on SQLite. Neither can run inside a transaction."""
    tables = ", ".join(["metrics_series", *TIER_TABLES])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            cursor.execute(f"{verb} {tables}")
        elif not connection.in_atomic_block:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def delete_servers(prefix: str) -> None:
    """Delete the servers named prefix* with their series and history. When
    they own every series, the history tables are emptied whole (fast)."""
    mine = Series.objects.filter(server__name__startswith=prefix)
    others = Series.objects.exclude(server__name__startswith=prefix).exists()
    with transaction.atomic(), connection.cursor() as cursor:
        if not others and connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(TIER_TABLES)}")
        elif not others:
            for table in TIER_TABLES:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        else:
            sql, params = mine.values("id").query.sql_with_params()
            for table in TIER_TABLES:
                cursor.execute(f"DELETE FROM {table} WHERE series_id IN ({sql})", params)  # noqa: S608
        Server.objects.filter(name__startswith=prefix).delete()


def summary(t: Totals, plan: synthetic.Plan) -> str:
    seconds = time.monotonic() - t.started
    compacted = t.raw - t.hot
    return "\n".join(
        [
            f"Generated {t.servers} servers, {t.series} series, in {seconds:.1f} s "
            f"(history ends {datetime.fromtimestamp(plan.now, UTC):%Y-%m-%d %H:%M} UTC).",
            f"  raw samples    {t.raw:>14,}  ({t.raw / seconds:,.0f}/s)",
            f"    in blocks    {compacted:>14,}  ({t.blocks:,} blocks, "
            f"{t.block_bytes / max(compacted, 1):.2f} bytes/sample)",
            f"    hot rows     {t.hot:>14,}",
            f"  5-minute rows  {t.rollup_5m:>14,}",
            f"  1-hour rows    {t.rollup_1h:>14,}",
            f"  rows written   {t.rows:>14,}  ({t.rows / seconds:,.0f} rows/s)",
        ]
    )
