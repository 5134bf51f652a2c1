"""History benchmark: disk per tier, query latency over HTTP, maintenance throughput.

    # 1. fill a database with `vigil generate_history` (see docs/benchmarks.md), then:
    .venv/bin/python bench/history.py size  --data-dir DIR [--database-url URL]
    .venv/bin/python bench/history.py query --data-dir DIR [--database-url URL]
    # 2. rollup and compaction throughput on a scratch database:
    .venv/bin/python bench/history.py maintenance [--database-url URL] [--series 5000]

`size` prints rows, bytes and bytes per sample of each tier, and the hot table
(one row per sample) beside the compressed blocks. `query` starts `vigil run`
on the database and times /api/v1/query over HTTP, 100 requests per case
(p50/p95). `maintenance` writes two hours of 10-second samples for --series
series into the hot table and times the rollup and the compaction of them. It
prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TABLES = ["metrics_sample", "metrics_block", "metrics_rollup5m", "metrics_rollup1h"]


def _django(data_dir: Path, database_url: str | None) -> None:
    os.environ["VIGIL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("VIGIL_DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


def table_bytes() -> dict[str, int]:
    """On-disk bytes of each history table with its indexes (all partitions)."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            if connection.vendor == "sqlite":
                cursor.execute("SELECT name FROM sqlite_master WHERE tbl_name = %s", [table])
                names = [row[0] for row in cursor.fetchall()]
                marks = ",".join(["%s"] * len(names))
                cursor.execute(
                    f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({marks})",  # noqa: S608
                    names,
                )
                out[table] = int(cursor.fetchone()[0] or 0)
            else:
                cursor.execute(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "WHERE c.relname = %s OR c.oid IN (SELECT inhrelid FROM pg_inherits i "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s)",
                    [table, table],
                )
                out[table] = int(cursor.fetchone()[0])
    return out


def cmd_size(args) -> dict:
    _django(args.data_dir, args.database_url)
    from django.db import connection

    sizes = table_bytes()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM metrics_sample")
        hot_rows = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM metrics_block")
        blocks, block_samples = cursor.fetchone()
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM metrics_rollup5m")
        r5, r5_samples = cursor.fetchone()
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM metrics_rollup1h")
        r1, r1_samples = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM metrics_series")
        series = cursor.fetchone()[0]
    rows = [
        ("hot rows (1 row/sample)", hot_rows, hot_rows, sizes["metrics_sample"]),
        ("blocks (compressed raw)", blocks, block_samples, sizes["metrics_block"]),
        ("5 min rollups", r5, r5_samples, sizes["metrics_rollup5m"]),
        ("1 h rollups", r1, r1_samples, sizes["metrics_rollup1h"]),
    ]
    result = {"database": connection.vendor, "series": series, "tiers": []}
    print(f"{connection.vendor}, {series:,} series")
    print(f"{'tier':26} {'rows':>13} {'samples':>15} {'MB':>9} {'B/row':>7} {'B/sample':>9}")
    for name, n, samples, size in rows:
        per_row = size / n if n else 0
        per_sample = size / samples if samples else 0
        print(f"{name:26} {n:13,} {samples:15,} {size / 1e6:9.1f} {per_row:7.1f} {per_sample:9.2f}")
        result["tiers"].append(
            {"tier": name, "rows": n, "samples": samples, "bytes": size, "per_sample": per_sample}
        )
    return result


def _get(url: str, auth: str) -> tuple[float, dict]:
    request = urllib.request.Request(url, headers={"Authorization": auth})
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    took = time.perf_counter() - began
    return took, json.loads(body)


def query_cases(servers: list[str], location: str) -> list[tuple[str, dict]]:
    day = 86400
    one = servers[0]
    twenty = servers[:20]
    return [
        ("1 series x 1 h", {"server": [one], "span": 3600}),
        ("1 series x 24 h", {"server": [one], "span": day}),
        ("1 series x 7 d", {"server": [one], "span": 7 * day}),
        ("1 series x 30 d", {"server": [one], "span": 30 * day}),
        ("20 series x 7 d", {"server": twenty, "span": 7 * day}),
        (f"location ({location}) x 24 h", {"location": location, "span": day}),
    ]


def cmd_query(args) -> dict:
    _django(args.data_dir, args.database_url)
    from vigil.servers.models import Location, Server
    from vigil.testing import VigilProcess

    servers = list(Server.objects.order_by("name").values_list("name", flat=True)[:20])
    location = Location.objects.order_by("name").values_list("name", flat=True).first()
    in_location = Server.objects.filter(location__name=location).count()
    process = VigilProcess(args.data_dir, args.database_url, "--no-local-agent")
    process.env["VIGIL_HISTORY_INTERVAL_SECONDS"] = "0"  # maintenance off
    process.start(timeout=300)
    # An API token: basic auth would spend ~0.25 s per request hashing the password.
    from django.contrib.auth.models import User

    from vigil.api.models import ApiToken
    from vigil.metrics.models import Retention

    _, token = ApiToken.issue(User.objects.get(username="admin"), "bench-history")
    auth = f"Token {token}"
    # The tiers' ages as generated, so that the query picks the tier that has the data.
    raw_days, days_5m, days_1h = (int(x) for x in args.retention.split(","))
    Retention.objects.all().delete()
    Retention.objects.create(raw_days=raw_days, rollup_5m_days=days_5m, rollup_1h_days=days_1h)
    result = {"cases": []}
    try:
        now = int(time.time())
        print(
            f"/api/v1/query over HTTP, {args.requests} requests per case, "
            f"max_points={args.max_points}"
        )
        print(f"{'case':34} {'tier':>5} {'points':>8} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8}")
        for name, case in query_cases(servers, location):
            params = [("metric", "cpu_usage_percent"), ("max_points", str(args.max_points))]
            params += [("server", s) for s in case.get("server", [])]
            if "location" in case:
                params.append(("location", case["location"]))
            times = []
            for i in range(args.requests):
                end = now - (i * 37) % 600  # vary the range a little, as charts do
                query = params + [("start", str(end - case["span"])), ("end", str(end))]
                url = f"{process.url}/api/v1/query?{urllib.parse.urlencode(query)}"
                took, body = _get(url, auth)
                times.append(took * 1000)
            points = sum(len(s["points"]) for s in body["series"])
            # The first request decodes the blocks it reads; later ones find
            # most of them in the block cache, as a refreshing chart does.
            first = times[0]
            times.sort()
            p50 = statistics.median(times)
            p95 = times[int(len(times) * 0.95) - 1]
            label = name if "location" not in case else f"{name} [{in_location} servers]"
            print(f"{label:34} {body['tier']:>5} {points:8,} {first:9.1f} {p50:8.1f} {p95:8.1f}")
            result["cases"].append(
                {
                    "case": label,
                    "tier": body["tier"],
                    "points": points,
                    "first": first,
                    "p50": p50,
                    "p95": p95,
                }
            )
    finally:
        process.stop()
    return result


def cmd_maintenance(args) -> dict:
    """Rollup and compaction throughput on two hours of fresh hot samples."""
    import numpy as np

    data_dir = Path(tempfile.mkdtemp(prefix="vigil-bench-history-"))
    _django(data_dir, args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from vigil.metrics import compaction, rollup, state
    from vigil.metrics.models import Series
    from vigil.servers.models import Server

    call_command("migrate", verbosity=0)
    hours = 2
    step = 10
    now = int(time.time())
    start = now // 7200 * 7200 - 4 * 3600
    servers = Server.objects.bulk_create(
        [Server(name=f"bench-{i}", host_name=f"bench-{i}") for i in range(args.series // 50)]
    )
    Series.objects.bulk_create(
        [
            Series(server=s, metric=f"m{j}", labels={}, labels_key="")
            for s in servers
            for j in range(50)
        ]
    )
    ids = list(Series.objects.values_list("pk", flat=True))
    ts = np.arange(start, start + hours * 3600, step, dtype=np.int64)
    rng = np.random.default_rng(1)
    total = len(ids) * len(ts)
    print(f"{connection.vendor}: {len(ids):,} series x {len(ts)} samples = {total:,} samples")
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for sid in ids:
            values = np.round(rng.normal(50, 10, len(ts)), 1)
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(
                    "COPY metrics_sample (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int4", "int8", "float8"])
                    for t, v in zip(ts.tolist(), values.tolist(), strict=True):
                        copy.write_row((sid, t, v))
            else:
                cursor.executemany(
                    "INSERT INTO metrics_sample (series_id, ts, value) VALUES (%s, %s, %s)",
                    [(sid, t, v) for t, v in zip(ts.tolist(), values.tolist(), strict=True)],
                )
    print(f"  loaded in {time.perf_counter() - began:.1f} s")
    state.put(state.ROLLUP_5M, start)
    state.put(state.ROLLUP_1H, start)
    from vigil.metrics import partitions

    partitions.ensure(start)
    began = time.perf_counter()
    stats = rollup.run(start + hours * 3600 + 3600)
    rolled = time.perf_counter() - began
    began = time.perf_counter()
    cstats = compaction.run(start + hours * 3600 + 3 * 3600)
    compacted = time.perf_counter() - began
    result = {
        "database": connection.vendor,
        "samples": total,
        "rollup_seconds": rolled,
        "rollup_samples_per_second": total / rolled,
        "buckets_5m": stats.buckets_5m,
        "compaction_seconds": compacted,
        "compaction_samples_per_second": cstats.samples / compacted if compacted else 0,
        "bytes_per_sample": cstats.bytes / cstats.samples if cstats.samples else 0,
    }
    print(f"  rollup 5 min + 1 h: {rolled:.1f} s = {total / rolled:,.0f} samples/s")
    print(
        f"  compaction: {compacted:.1f} s = {result['compaction_samples_per_second']:,.0f} "
        f"samples/s, {result['bytes_per_sample']:.2f} B/sample in blocks"
    )
    return result


def cmd_lockwait(args) -> dict:
    """SQLite: how long a small ingest write waits for the lock while
    `maintain_history` runs (the aim: never more than ~100 ms)."""
    import sqlite3
    import threading

    _django(args.data_dir, None)
    from django.db import connection

    from vigil.metrics.tasks import maintain_history

    path = connection.settings_dict["NAME"]
    waits: list[float] = []
    done = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        ts = int(time.time()) * 1000  # far from any real sample
        while not done.is_set():
            began = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            waits.append(time.perf_counter() - began)
            db.execute(
                "INSERT OR IGNORE INTO metrics_sample (series_id, ts, value) VALUES (0, ?, 0)",
                [ts],
            )
            db.execute("COMMIT")
            ts += 1
            time.sleep(0.02)
        db.execute("DELETE FROM metrics_sample WHERE series_id = 0")
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    began = time.perf_counter()
    try:
        result = maintain_history(args.now or None)
    finally:
        done.set()
        thread.join()
    took = time.perf_counter() - began
    waits.sort()
    out = {
        "maintenance_seconds": took,
        "writes": len(waits),
        "wait_p50_ms": statistics.median(waits) * 1000,
        "wait_p99_ms": waits[int(len(waits) * 0.99) - 1] * 1000 if len(waits) > 1 else 0,
        "wait_max_ms": waits[-1] * 1000,
        "maintenance": result,
    }
    print(
        f"maintain_history took {took:.1f} s; {len(waits)} small writes meanwhile waited "
        f"p50 {out['wait_p50_ms']:.1f} ms, p99 {out['wait_p99_ms']:.1f} ms, "
        f"max {out['wait_max_ms']:.1f} ms for the write lock"
    )
    print(json.dumps(result, indent=1, default=str))
    return out


def cmd_rollup_estimate(args) -> dict:
    """What 5-minute rollups would take compressed into daily blocks with the
    raw tier's codec (one stream per column), against rows: the next step for
    long retention at thousands of servers."""
    import numpy as np

    _django(args.data_dir, args.database_url)
    from django.db import connection

    from vigil.metrics import codec

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM metrics_series ORDER BY id LIMIT %s", [args.series])
        ids = [row[0] for row in cursor.fetchall()]
        total_bytes = total_rows = 0
        for sid in ids:
            cursor.execute(
                "SELECT ts, min, max, sum, count, last FROM metrics_rollup5m "
                "WHERE series_id = %s ORDER BY ts",
                [sid],
            )
            rows = np.array(cursor.fetchall(), dtype=np.float64)
            if not len(rows):
                continue
            ts = rows[:, 0].astype(np.int64)
            days = ts // 86400
            for day in np.unique(days):
                part = days == day
                # The timestamp stream is paid once; the other columns reuse it.
                total_bytes += len(codec.encode(ts[part], rows[part, 1]))
                for col in range(2, 6):
                    total_bytes += len(codec.encode(ts[part], rows[part, col])) - codec.HEADER_SIZE
            total_rows += len(rows)
    per_row = total_bytes / total_rows
    print(
        f"5 min rollups of {len(ids)} series, {total_rows:,} buckets: "
        f"{per_row:.1f} bytes per bucket in daily blocks (codec payload, no row overhead)"
    )
    return {"series": len(ids), "buckets": total_rows, "bytes_per_bucket": per_row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("size", "query"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--database-url")
        p.add_argument("--json", action="store_true")
    sub.choices["query"].add_argument("--requests", type=int, default=100)
    sub.choices["query"].add_argument("--max-points", type=int, default=1000)
    sub.choices["query"].add_argument(
        "--retention",
        default="2,7,1825",
        help="raw,5m,1h days to set (default: what generate_history makes by default)",
    )
    lw = sub.add_parser("lockwait")
    lw.add_argument("--data-dir", type=Path, required=True)
    lw.add_argument("--now", type=float, help="run maintenance as of this unix time")
    lw.add_argument("--json", action="store_true")
    re_ = sub.add_parser("rollup-estimate")
    re_.add_argument("--data-dir", type=Path, required=True)
    re_.add_argument("--database-url")
    re_.add_argument("--series", type=int, default=500)
    re_.add_argument("--json", action="store_true")
    m = sub.add_parser("maintenance")
    m.add_argument("--database-url")
    m.add_argument("--series", type=int, default=5000)
    m.add_argument("--json", action="store_true")
    args = parser.parse_args()
    commands = {
        "size": cmd_size,
        "query": cmd_query,
        "maintenance": cmd_maintenance,
        "lockwait": cmd_lockwait,
        "rollup-estimate": cmd_rollup_estimate,
    }
    result = commands[args.command](args)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
