"""Ingest benchmark: a real `vigil run` over HTTP against the raw bulk writer.

    .venv/bin/python bench/ingest.py                      # SQLite in a temporary data dir
    .venv/bin/python bench/ingest.py --database-url postgres://postgres@127.0.0.1:5432/test

One run does, in order:
1. Starts `vigil run --no-local-agent` on a free port with a fresh data dir (and a
   scratch PostgreSQL database next to the one given), and creates an ingest token.
2. End to end: --clients processes POST pre-built batches in Vigil's JSON format to
   /api/v1/ingest on keep-alive connections. A warm-up round creates the servers
   and series; the measured phase then runs for --duration seconds. Only samples
   answered with 204 count.
3. Stops the server, then writes the same batches into another fresh database
   with the server's own writer (`writer.write_now`, no HTTP), one transaction per
   request and 20 requests per transaction, and measures the plain database
   ceiling (SQLite executemany INSERT OR IGNORE, PostgreSQL binary COPY).
4. Prints a table (or JSON with --json) and drops every scratch database.

--py-spy PATH records the server with py-spy during the measured phase and prints
where its time goes. It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import multiprocessing as mp
import os
import random
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SERIES_PER_SERVER = 50
STEP_SECONDS = 10
REQUESTS_PER_GROUP = 20  # grouped transactions: 20 x 5,000 = 100k rows
# Bodies are built before the clock starts, enough for this rate over --duration;
# a faster server exhausts them and the measured phase ends early (reported).
POOL_SAMPLES_PER_SECOND = 500_000
INGEST_PATH = "/api/v1/ingest"

# (metric, label name, label values, low, high, decimals): 50 series per server.
_SHAPE = [
    ("cpu_usage_percent", None, [None], 0, 100, 2),
    ("memory_used_percent", None, [None], 10, 95, 2),
    ("memory_available_bytes", None, [None], 1e9, 6e10, 0),
    ("swap_used_percent", None, [None], 0, 20, 2),
    ("load1", None, [None], 0, 16, 2),
    ("load5", None, [None], 0, 16, 2),
    ("load15", None, [None], 0, 16, 2),
    ("processes_running", None, [None], 1, 40, 0),
    ("processes_total", None, [None], 200, 900, 0),
    ("uptime_seconds", None, [None], 1e5, 1e7, 0),
    ("filesystem_used_percent", "mountpoint", ["/", "/var", "/home", "/boot", "/srv"], 5, 95, 2),
    ("filesystem_free_bytes", "mountpoint", ["/", "/var", "/home", "/boot", "/srv"], 1e8, 2e12, 0),
    (
        "disk_read_bytes_per_second",
        "device",
        ["sda", "sdb", "sdc", "nvme0n1", "nvme1n1"],
        0,
        5e8,
        1,
    ),
    (
        "disk_write_bytes_per_second",
        "device",
        ["sda", "sdb", "sdc", "nvme0n1", "nvme1n1"],
        0,
        5e8,
        1,
    ),
    *[
        (
            f"network_{d}_{u}_per_second",
            "interface",
            ["eth0", "eth1", "bond0", "docker0", "lo"],
            0,
            hi,
            1,
        )
        for d in ("receive", "transmit")
        for u, hi in (("bytes", 1.25e9), ("packets", 1e6))
    ],
]


def series_shape() -> list[tuple[str, dict[str, str], float, float, int]]:
    """The 50 (metric, labels, low, high, decimals) that every benchmark server reports."""
    out = []
    for metric, label, values, low, high, decimals in _SHAPE:
        for value in values:
            out.append((metric, {label: value} if label else {}, low, high, decimals))
    assert len(out) == SERIES_PER_SERVER, len(out)
    return out


def host_name(server: int) -> str:
    return f"bench-{server:05d}"


def request_data(
    server: int, rnd: int, points: int, base_ts: int
) -> list[tuple[str, dict[str, str], list[int], list[float]]]:
    """One server's series for one round: (metric, labels, timestamps, values).

    Round r covers [base_ts + r*points*10, ...): every (server, round) is new data,
    so no request repeats stored samples. Round -1 is the warm-up (one point).
    """
    rng = random.Random(server * 1_000_003 + rnd)
    if rnd < 0:
        timestamps = [base_ts - STEP_SECONDS]
    else:
        start = base_ts + rnd * points * STEP_SECONDS
        timestamps = list(range(start, start + points * STEP_SECONDS, STEP_SECONDS))
    out = []
    for metric, labels, low, high, decimals in series_shape():
        values = [round(rng.uniform(low, high), decimals) for _ in timestamps]
        out.append((metric, labels, timestamps, values))
    return out


def json_body(server: int, rnd: int, points: int, base_ts: int) -> bytes:
    import orjson

    series = [
        {"metric": m, "labels": lb, "points": [[t, v] for t, v in zip(ts, vs, strict=True)]}
        for m, lb, ts, vs in request_data(server, rnd, points, base_ts)
    ]
    return orjson.dumps({"host": host_name(server), "series": series})


def request_slot(j: int, servers: int) -> tuple[int, int]:
    """Request number j of the measured phase: (server, round)."""
    return j % servers, j // servers


# -- end to end: the client processes -------------------------------------------------


def _post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]):
    conn.request("POST", INGEST_PATH, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status, response.getheader("Retry-After")


def _client(idx: int, cfg: dict, barrier, start_at, out_q) -> None:
    try:
        out_q.put(_client_run(idx, cfg, barrier, start_at))
    except BaseException as exc:
        barrier.abort()
        out_q.put({"error": f"client {idx}: {exc!r}"})


def _client_run(idx: int, cfg: dict, barrier, start_at) -> dict:
    n, clients, points, base_ts = cfg["servers"], cfg["clients"], cfg["points"], cfg["base_ts"]
    warmup = [json_body(s, -1, points, base_ts) for s in range(idx, n, clients)]
    bodies = [
        json_body(*request_slot(j, n), points, base_ts) for j in range(idx, cfg["pool"], clients)
    ]
    per_body = SERIES_PER_SERVER * points
    headers = {"Authorization": f"Bearer {cfg['token']}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=120)
    statuses: Counter[str] = Counter()

    def send(body: bytes) -> tuple[int, float]:
        nonlocal conn
        t0 = time.perf_counter()
        try:
            status, retry = _post(conn, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=120)
            statuses[type(exc).__name__] += 1
            return 0, time.perf_counter() - t0
        elapsed = time.perf_counter() - t0
        if status != 204:
            statuses[str(status)] += 1
            if status == 503:
                time.sleep(min(float(retry or 1), 1.0))
        return status, elapsed

    warmup_failed = sum(send(body)[0] != 204 for body in warmup)
    statuses.clear()
    barrier.wait(timeout=600)  # everyone warmed up
    barrier.wait(timeout=600)  # start_at is set
    begin = start_at.value
    time.sleep(max(0.0, begin - time.monotonic()))
    deadline = begin + cfg["duration"]
    latencies: list[float] = []
    ok = samples = sent = 0
    exhausted = False
    while time.monotonic() < deadline:
        if sent == len(bodies):
            exhausted = True
            break
        status, elapsed = send(bodies[sent])
        sent += 1
        if status == 204:
            ok += 1
            samples += per_body
            latencies.append(elapsed)
    end = time.monotonic()
    conn.close()
    return {
        "ok": ok,
        "sent": sent,
        "samples": samples,
        "statuses": dict(statuses),
        "latencies": latencies,
        "end": end,
        "exhausted": exhausted,
        "warmup_failed": warmup_failed,
        "body_bytes": sum(map(len, bodies[:sent])),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def run_end_to_end(args, port: int, token: str, server_pid: int, base_ts: int, log) -> dict:
    per_request = SERIES_PER_SERVER * args.points
    pool = max(args.servers, math.ceil(POOL_SAMPLES_PER_SECOND * args.duration / per_request))
    cfg = {
        "servers": args.servers,
        "clients": args.clients,
        "points": args.points,
        "base_ts": base_ts,
        "pool": pool,
        "token": token,
        "port": port,
        "duration": args.duration,
    }
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(args.clients + 1)
    start_at = ctx.Value("d", 0.0)
    out_q = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(i, cfg, barrier, start_at, out_q), daemon=True)
        for i in range(args.clients)
    ]
    profiler = None
    try:
        for p in procs:
            p.start()
        log(f"building {pool} request bodies and warming up ({args.servers} servers)…")
        t0 = time.monotonic()
        barrier.wait(timeout=600)
        log(f"warm-up done in {time.monotonic() - t0:.1f} s; measuring for {args.duration} s…")
        if args.py_spy:
            profiler = subprocess.Popen(
                [
                    args.py_spy,
                    "record",
                    "--pid",
                    str(server_pid),
                    "--duration",
                    str(math.ceil(args.duration)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--output",
                    str(args.profile_out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
        cpu0 = _cpu_seconds(server_pid)
        start_at.value = time.monotonic() + 0.2
        barrier.wait(timeout=600)
        results = [out_q.get(timeout=args.duration + 600) for _ in procs]
        cpu1 = _cpu_seconds(server_pid)
        if profiler:
            profiler.wait(timeout=60)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        if profiler and profiler.poll() is None:
            profiler.terminate()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError("; ".join(errors))
    wall = max(r["end"] for r in results) - start_at.value
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    samples = sum(r["samples"] for r in results)
    ok = sum(r["ok"] for r in results)
    sent = sum(r["sent"] for r in results)
    return {
        "samples": samples,
        "requests_ok": ok,
        "requests_sent": sent,
        "non_204": dict(statuses),
        "warmup_failed": sum(r["warmup_failed"] for r in results),
        "wall_seconds": wall,
        "samples_per_second": samples / wall,
        "requests_per_second": ok / wall,
        "latency_p50_ms": _percentile(latencies, 0.50) * 1e3,
        "latency_p99_ms": _percentile(latencies, 0.99) * 1e3,
        "mean_body_bytes": sum(r["body_bytes"] for r in results) / max(sent, 1),
        "server_cpu_cores": (cpu1 - cpu0) / wall,
        "pool_exhausted": any(r["exhausted"] for r in results),
    }


# -- raw writer baseline: runs in a child process (--raw-only) ---------------------------


def _series_points(server: int, rnd: int, points: int, base_ts: int):
    from vigil.ingest.parsers.base import SeriesPoints

    return [
        SeriesPoints(host_name(server), m, tuple(sorted(lb.items())), ts, vs)
        for m, lb, ts, vs in request_data(server, rnd, points, base_ts)
    ]


def raw_main(args) -> dict:
    """Write the end-to-end batches with writer.write_now, timing only the transactions."""
    import django

    django.setup()
    from django.db import connection, transaction

    from vigil.ingest import writer
    from vigil.metrics.models import Series

    n, points, base_ts = args.servers, args.points, args.base_ts
    with transaction.atomic():
        ids = writer.server_ids_for_hosts(host_name(s) for s in range(n))
    for s in range(n):
        with transaction.atomic():
            writer.write_now(
                [(ids[host_name(s)], sp) for sp in _series_points(s, -1, points, base_ts)]
            )

    next_request = 0

    def items() -> list:
        nonlocal next_request
        server, rnd = request_slot(next_request, n)
        next_request += 1
        return [(ids[host_name(server)], sp) for sp in _series_points(server, rnd, points, base_ts)]

    def measure(per_txn: int) -> dict:
        rows = txns = 0
        busy = 0.0
        while busy < args.raw_seconds:
            batches = [items() for _ in range(per_txn)]
            t0 = time.perf_counter()
            with transaction.atomic():
                rows += sum(writer.write_now(b) for b in batches)
            busy += time.perf_counter() - t0
            txns += 1
        return {"rows": rows, "transactions": txns, "seconds": busy, "rows_per_second": rows / busy}

    out = {
        "vendor": connection.vendor,
        "per_request_txn": measure(1),
        "grouped_txn": measure(REQUESTS_PER_GROUP),
    }

    # The plain database: pre-built rows, no ORM, no writer bookkeeping.
    series_id = {
        (sid, metric, key): pk
        for pk, sid, metric, key in Series.objects.values_list(
            "id", "server_id", "metric", "labels_key"
        )
    }
    from vigil.metrics.models import labels_key

    def rows_for_group() -> list[tuple[int, int, float]]:
        rows = []
        for server_id, sp in (pair for _ in range(REQUESTS_PER_GROUP) for pair in items()):
            pk = series_id[(server_id, sp.metric, labels_key(sp.labels))]
            rows.extend((pk, t, v) for t, v in zip(sp.timestamps, sp.values, strict=True))
        return rows

    def ceiling(write, prepare=lambda rows: rows) -> dict:
        rows = txns = 0
        busy = 0.0
        while busy < args.raw_seconds / 2 or txns < 3:
            group = rows_for_group()
            prepared = prepare(group)
            t0 = time.perf_counter()
            with transaction.atomic():
                write(prepared)
            busy += time.perf_counter() - t0
            rows += len(group)
            txns += 1
        return {"rows": rows, "transactions": txns, "seconds": busy, "rows_per_second": rows / busy}

    if connection.vendor == "sqlite":

        def executemany(rows):
            connection.connection.executemany(
                "INSERT OR IGNORE INTO metrics_sample (series_id, ts, value) VALUES (?, ?, ?)",
                rows,
            )

        out["ceiling"] = {"executemany": ceiling(executemany)}
    else:
        copy_sql = "COPY metrics_sample (series_id, ts, value) FROM STDIN (FORMAT BINARY)"

        def copy_rows(rows):
            with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["int4", "int8", "float8"])
                for row in rows:
                    copy.write_row(row)

        def copy_buffer(buffer):
            with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                copy.write(buffer)

        out["ceiling"] = {
            "copy_write_row": ceiling(copy_rows),
            "copy_buffer": ceiling(copy_buffer, _binary_copy_buffer),
        }
    return out


def _binary_copy_buffer(rows: list[tuple[int, int, float]]) -> bytes:
    """PostgreSQL's binary COPY format, encoded before the clock starts."""
    row = struct.Struct("!hiiiqid")
    parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack("!ii", 0, 0)]
    parts.extend(row.pack(3, 4, s, 8, t, 8, v) for s, t, v in rows)
    parts.append(struct.pack("!h", -1))
    return b"".join(parts)


# -- orchestration -----------------------------------------------------------------------


def _postgres_url(args) -> str | None:
    url = args.database_url or os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _vigil_testing():
    """vigil.testing imports models, so Django is set up here (it opens no connection)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    os.environ.setdefault("VIGIL_SECRET_KEY", "bench-only-" + "x" * 40)
    import django

    django.setup()
    from vigil import testing

    return testing


def _vigil_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """The environment `vigil run` gets: its own data dir and database, no broker."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIGIL_", "CELERY_", "DJANGO_")) and k != "DATABASE_URL"
    }
    env.update(
        VIGIL_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="vigil.settings",
        # The settings of `vigil run` (DEBUG off, so no query log), whose data
        # dir also keeps the generated secret key.
        VIGIL_EMBEDDED="true",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_raw(args, data_dir: Path, database_url: str | None, base_ts: int, log) -> dict:
    env = _vigil_env(data_dir, database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    log("raw baseline: migrating a fresh database…")
    subprocess.run(
        [sys.executable, "-m", "vigil.cli", "migrate", "--verbosity", "0"],
        env=env,
        check=True,
        timeout=300,
    )
    log(f"raw baseline: writer and database ceiling ({args.raw_seconds} s per mode)…")
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--raw-only",
            "--servers",
            str(args.servers),
            "--points",
            str(args.points),
            "--raw-seconds",
            str(args.raw_seconds),
            "--base-ts",
            str(base_ts),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stored_samples(data_dir: Path, database_url: str | None) -> int:
    """Samples stored by the benchmark's requests (Vigil's own `up` series excluded)."""
    sql = (
        "SELECT count(*) FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
        "WHERE r.metric <> 'up'"
    )
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as conn:
            return conn.execute(sql).fetchone()[0]
    with contextlib.closing(sqlite3.connect(data_dir / "vigil.sqlite3")) as conn:
        return conn.execute(sql).fetchone()[0]


def _versions(database_url: str | None) -> dict:
    out = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as conn:
            out["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    return out


def run(args) -> dict:
    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    pg_url = _postgres_url(args)
    if pg_url:
        os.environ["DATABASE_URL"] = pg_url
    else:
        os.environ.pop("DATABASE_URL", None)
    testing = _vigil_testing()
    per_request = SERIES_PER_SERVER * args.points
    pool = max(args.servers, math.ceil(POOL_SAMPLES_PER_SECOND * args.duration / per_request))
    span = (pool // args.servers + 2) * args.points * STEP_SECONDS
    # In the past few days, aligned on the step: the server refuses the future.
    base_ts = int(time.time() - max(3 * 86400, span + 86400)) // STEP_SECONDS * STEP_SECONDS
    result: dict = {
        "database": "postgresql" if pg_url else "sqlite",
        "clients": args.clients,
        "servers": args.servers,
        "series_per_server": SERIES_PER_SERVER,
        "points": args.points,
        "samples_per_request": per_request,
        "duration": args.duration,
        "versions": _versions(pg_url),
    }
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        e2e_url = stack.enter_context(testing.scratch_database())
        server = testing.VigilProcess(tmp / "e2e", e2e_url, "--no-local-agent")
        log(f"starting vigil run on port {server.port} ({result['database']})…")
        stack.callback(server.stop)
        server.start(timeout=120)
        token = server.vigil("token", "create", "--name", "bench").strip().splitlines()[-1]
        e2e = run_end_to_end(args, server.port, token, server.proc.pid, base_ts, log)
        server.stop()
        e2e["stored_samples"] = _stored_samples(tmp / "e2e", e2e_url)
        e2e["warmup_samples"] = args.servers * SERIES_PER_SERVER
        result["end_to_end"] = e2e
        if args.py_spy:
            result["profile"] = profile_summary(args.profile_out)

        raw_url = stack.enter_context(testing.scratch_database())
        raw = run_raw(args, tmp / "raw", raw_url, base_ts, log)
        result["raw"] = raw
    rate = result["end_to_end"]["samples_per_second"]
    result["ratio_per_request_txn"] = rate / raw["per_request_txn"]["rows_per_second"]
    result["ratio_grouped_txn"] = rate / raw["grouped_txn"]["rows_per_second"]
    return result


# -- profile ---------------------------------------------------------------------------

# Inclusive share of the server's samples whose stack holds one of these frames.
PROFILE_MARKERS = [
    ("waitress: reading and parsing HTTP", ("received (waitress/channel.py", "handle_read")),
    ("waitress: writing responses", ("handle_write", "_flush_some")),
    ("Django handler + middleware (whole request)", ("__call__ (django/core/handlers/wsgi.py",)),
    ("ingest view (auth, body, parse, resolve, wait)", ("ingest_json (vigil/ingest/views.py",)),
    ("  token lookup", ("authenticate (vigil/ingest/auth.py",)),
    ("  read body", ("read_body (vigil/ingest/body.py",)),
    ("  parse JSON and check points", ("parse (vigil/ingest/parsers/vigil_json.py",)),
    ("  server ids", ("server_ids_for_hosts (vigil/ingest/writer.py",)),
    ("writer thread: write_now", ("write_now (vigil/ingest/writer.py",)),
    ("  series ids", ("_series_ids_for (vigil/ingest/writer.py",)),
    (
        "  build row lists",
        ("<genexpr> (vigil/ingest/writer.py", "<lambda> (vigil/ingest/writer.py"),
    ),
    ("  insert samples", ("_insert_samples (vigil/ingest/writer.py",)),
    ("  update last values", ("_update_last_values (vigil/ingest/writer.py",)),
    ("  mark servers seen", ("_mark_seen (vigil/ingest/writer.py",)),
    ("commit", ("__exit__ (django/db/transaction.py",)),
]


def profile_summary(path: Path) -> dict:
    """Shares of the py-spy samples (collapsed stacks) by the frames in PROFILE_MARKERS."""
    stacks: list[tuple[str, int]] = []
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack, int(count)))
    total = sum(c for _, c in stacks)
    shares = {}
    for name, frames in PROFILE_MARKERS:
        hit = sum(c for s, c in stacks if any(f in s for f in frames))
        shares[name] = hit / total if total else 0.0
    leaves: Counter[str] = Counter()
    for stack, count in stacks:
        leaves[stack.rsplit(";", 1)[-1]] += count
    return {
        "samples": total,
        "shares": shares,
        "top_self": [(f, c / total) for f, c in leaves.most_common(15)] if total else [],
    }


# -- report ------------------------------------------------------------------------------


def _fmt_rate(value: float) -> str:
    return f"{value:>12,.0f}"


def print_table(r: dict) -> None:
    e2e, raw = r["end_to_end"], r["raw"]
    print(
        f"\nVigil ingest benchmark: {r['database']}, {r['clients']} clients, "
        f"{r['servers']} servers x {r['series_per_server']} series, "
        f"{r['points']} points per series per request ({r['samples_per_request']:,} samples)"
    )
    print("  " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    print(f"\n  {'':<58}{'samples/s':>12}")
    print(
        f"  {'end to end (HTTP, ' + str(r['clients']) + ' clients)':<58}"
        f"{_fmt_rate(e2e['samples_per_second'])}"
    )
    print(
        f"    {e2e['requests_per_second']:.1f} requests/s, latency p50 "
        f"{e2e['latency_p50_ms']:.0f} ms, p99 {e2e['latency_p99_ms']:.0f} ms, "
        f"server CPU {e2e['server_cpu_cores']:.2f} cores, {e2e['wall_seconds']:.1f} s"
    )
    print(
        f"    {e2e['requests_ok']} x 204 of {e2e['requests_sent']} requests; "
        f"non-204: {e2e['non_204'] or 'none'}; stored {e2e['stored_samples']:,} "
        f"(= {e2e['warmup_samples']:,} warm-up + {e2e['samples']:,} answered 204: "
        f"{'yes' if e2e['stored_samples'] == e2e['warmup_samples'] + e2e['samples'] else 'NO'})"
    )
    if e2e["pool_exhausted"]:
        print("    (the pre-built bodies ran out: the measured phase ended early)")
    print(
        f"  {'raw writer, 1 transaction per request':<58}"
        f"{_fmt_rate(raw['per_request_txn']['rows_per_second'])}"
    )
    print(
        f"  {f'raw writer, {REQUESTS_PER_GROUP} requests per transaction':<58}"
        f"{_fmt_rate(raw['grouped_txn']['rows_per_second'])}"
    )
    names = {
        "executemany": "SQLite executemany INSERT OR IGNORE, 100k rows/txn",
        "copy_write_row": "PostgreSQL binary COPY, write_row, 100k rows/txn",
        "copy_buffer": "PostgreSQL binary COPY, pre-encoded, 100k rows/txn",
    }
    for key, figures in raw["ceiling"].items():
        print(f"  {'ceiling: ' + names[key]:<58}{_fmt_rate(figures['rows_per_second'])}")
    print(f"\n  end to end / raw writer (1 txn per request)    {r['ratio_per_request_txn']:6.0%}")
    print(f"  end to end / raw writer (grouped txn)          {r['ratio_grouped_txn']:6.0%}")
    if "profile" in r:
        p = r["profile"]
        print(f"\n  server profile (py-spy, {p['samples']} samples, inclusive shares):")
        for name, share in p["shares"].items():
            print(f"    {name:<52}{share:6.1%}")
        print("  top frames by own time:")
        for frame, share in p["top_self"]:
            print(f"    {share:6.1%}  {frame}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", help="postgres://... (default: DATABASE_URL or SQLite)")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--servers", type=int, default=500, help="monitored servers")
    parser.add_argument("--points", type=int, default=100, help="points per series per request")
    parser.add_argument("--duration", type=float, default=20, help="seconds of the measured phase")
    parser.add_argument(
        "--raw-seconds", type=float, default=6, help="seconds of each raw writer mode"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile the server")
    parser.add_argument(
        "--profile-out", type=Path, default=Path("ingest-profile.txt"), help="py-spy output"
    )
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-ts", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_only:
        print(json.dumps(raw_main(args)))
        return
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
