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
import queue
import random
import resource
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
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

MOUNTS = ["/", "/var", "/home", "/boot", "/srv"]
DEVICES = ["sda", "sdb", "sdc", "nvme0n1", "nvme1n1"]
INTERFACES = ["eth0", "eth1", "bond0", "docker0", "lo"]
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
    ("filesystem_used_percent", "mountpoint", MOUNTS, 5, 95, 2),
    ("filesystem_free_bytes", "mountpoint", MOUNTS, 1e8, 2e12, 0),
    ("disk_read_bytes_per_second", "device", DEVICES, 0, 5e8, 1),
    ("disk_write_bytes_per_second", "device", DEVICES, 0, 5e8, 1),
    ("network_receive_bytes_per_second", "interface", INTERFACES, 0, 1.25e9, 1),
    ("network_transmit_bytes_per_second", "interface", INTERFACES, 0, 1.25e9, 1),
    ("network_receive_packets_per_second", "interface", INTERFACES, 0, 1e6, 1),
    ("network_transmit_packets_per_second", "interface", INTERFACES, 0, 1e6, 1),
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


def influx_body(server: int, rnd: int, points: int, base_ts: int) -> bytes:
    """The same samples as line protocol: one line per sample, time by time as
    Telegraf sends a batch of 5,000 lines; measurement = metric, field `value`,
    labels as tags."""
    host = host_name(server)
    data = request_data(server, rnd, points, base_ts)
    heads = [
        f"{metric},host={host}"
        + "".join(f",{k}={v.replace(' ', '_')}" for k, v in sorted(labels.items()))
        + " value="
        for metric, labels, _, _ in data
    ]
    lines = [
        f"{head}{values[i]} {timestamps[i]}"
        for i in range(len(data[0][2]))
        for head, (_, _, timestamps, values) in zip(heads, data, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


PROTOCOLS = {
    # name: (path, content type, body builder)
    "json": (INGEST_PATH, "application/json", json_body),
    "influx": ("/write?db=bench&precision=s", "text/plain; charset=utf-8", influx_body),
}


def request_slot(j: int, servers: int) -> tuple[int, int]:
    """Request number j of the measured phase: (server, round)."""
    return j % servers, j // servers


# -- end to end: the client processes -------------------------------------------------


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]):
    conn.request("POST", path, body=body, headers=headers)
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
    path, content_type, build = PROTOCOLS[cfg["protocol"]]
    warmup = [build(s, -1, points, base_ts) for s in range(idx, n, clients)]
    bodies = [build(*request_slot(j, n), points, base_ts) for j in range(idx, cfg["pool"], clients)]
    per_body = SERIES_PER_SERVER * points
    headers = {"Authorization": f"Bearer {cfg['token']}", "Content-Type": content_type}
    conn = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=120)
    statuses: Counter[str] = Counter()

    def send(body: bytes) -> tuple[int, float]:
        nonlocal conn
        t0 = time.perf_counter()
        try:
            status, retry = _post(conn, path, body, headers)
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
    cpu0 = time.process_time()
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
    cpu = time.process_time() - cpu0
    conn.close()
    return {
        "cpu_seconds": cpu,
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


def _cpu_seconds(stat_text: str) -> float:
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds(database: str | None) -> float:
    """CPU time of the live PostgreSQL backends connected to this database."""
    total = 0.0
    if not database:
        return total
    for path in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = path.read_text()
            if "(postgres)" in text and f" {database} ".encode() in (
                path.parent / "cmdline"
            ).read_bytes().replace(b"\0", b" "):
                total += _cpu_seconds(text)
    return total


class CpuMeter:
    """Who used the CPUs between start() and stop(), in cores (CPU seconds per second).

    "postgresql" is the backends of the benchmark's database; "other" is the rest
    of the machine: other work that disturbs the figures, PostgreSQL's background
    processes and the kernel's own share.
    """

    def __init__(self, pids: dict[str, int] | None = None, database: str | None = None) -> None:
        self.pids = pids or {}
        self.database = database

    def _snapshot(self) -> dict[str, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields) / os.sysconf("SC_CLK_TCK")
        snap = {
            "wall": time.monotonic(),
            "machine": total - (fields[3] + fields[4]) / os.sysconf("SC_CLK_TCK"),
            "total": total,
            "postgresql": _postgres_cpu_seconds(self.database),
            "children": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
        }
        for name, pid in self.pids.items():
            snap[name] = _cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
        return snap

    def start(self) -> CpuMeter:
        self._start = self._snapshot()
        return self

    def stop(self, children: str | None = None, **seconds: float) -> dict[str, float]:
        """Cores used by each named pid, by `seconds` measured elsewhere, by the
        waited-for children (under the name `children`), PostgreSQL and the rest."""
        end = self._snapshot()
        wall = end["wall"] - self._start["wall"]
        out = {name: (end[name] - self._start[name]) / wall for name in self.pids}
        out.update({name: value / wall for name, value in seconds.items()})
        if children:
            out[children] = (end["children"] - self._start["children"]) / wall
        if self.database and "postgresql" not in out:
            out["postgresql"] = (end["postgresql"] - self._start["postgresql"]) / wall
        # /proc/stat adds up all CPUs: the busy share of that, times the CPUs.
        cpus = os.cpu_count() or 1
        busy = (end["machine"] - self._start["machine"]) / (end["total"] - self._start["total"])
        out["other"] = max(0.0, busy * cpus - sum(out.values()))
        out["machine"] = busy * cpus
        return out


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def run_end_to_end(
    args, port: int, token: str, server_pid: int, database: str | None, base_ts: int, log
) -> dict:
    per_request = SERIES_PER_SERVER * args.points
    pool = max(args.servers, math.ceil(POOL_SAMPLES_PER_SECOND * args.duration / per_request))
    cfg = {
        "servers": args.servers,
        "clients": args.clients,
        "points": args.points,
        "base_ts": base_ts,
        "pool": pool,
        "protocol": args.protocol,
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
                    *args.py_spy_args.split(),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
        meter = CpuMeter({"server": server_pid}, database).start()
        start_at.value = time.monotonic() + 0.2
        barrier.wait(timeout=600)
        results = [out_q.get(timeout=args.duration + 600) for _ in procs]
        cpu = meter.stop(clients=sum(r.get("cpu_seconds", 0.0) for r in results))
        if profiler:
            profiler.wait(timeout=60)
    except threading.BrokenBarrierError:
        errors = []
        with contextlib.suppress(queue.Empty):
            while True:
                errors.append(out_q.get(timeout=5).get("error", ""))
        raise RuntimeError("a client failed: " + "; ".join(filter(None, errors))) from None
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
        "cpu_cores": cpu,
        "pool_exhausted": any(r["exhausted"] for r in results),
    }


# -- raw writer baseline: runs in a child process (--raw-only) ---------------------------


def _series_points(server: int, rnd: int, points: int, base_ts: int):
    from vigil.ingest.parsers.base import SeriesPoints

    return [
        SeriesPoints(
            host=host_name(server),
            metric=m,
            labels=tuple(sorted(lb.items())),
            timestamps=ts,
            values=vs,
        )
        for m, lb, ts, vs in request_data(server, rnd, points, base_ts)
    ]


RAW_MODES = {
    "per_request_txn": "raw writer, 1 transaction per request",
    "grouped_txn": f"raw writer, {REQUESTS_PER_GROUP} requests per transaction",
    "ceiling_executemany": "ceiling: SQLite executemany INSERT OR IGNORE",
    "ceiling_copy_write_row": "ceiling: PostgreSQL binary COPY, write_row",
    "ceiling_copy_buffer": "ceiling: PostgreSQL binary COPY, pre-encoded",
}


def raw_main(args) -> dict:
    """Write requests 0..--requests-1 in one mode, timing only the transactions.

    1. Register the servers and create the series with one point each (the
       warm-up round of the end-to-end phase).
    2. Build each transaction's data, then time the transaction alone:
       writer.write_now per request (the server's path after parsing), or the
       plain database with pre-built rows (the ceiling).
    """
    import django

    django.setup()
    from django.db import connection, transaction

    from vigil.ingest import writer
    from vigil.metrics.models import Series, labels_key

    def backend_cpu() -> float | None:
        """CPU seconds of this connection's PostgreSQL backend (on this machine)."""
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        return _cpu_seconds(Path(f"/proc/{pid}/stat").read_text())

    n, points, base_ts = args.servers, args.points, args.base_ts
    backend_start = backend_cpu()
    with transaction.atomic():
        ids = writer.server_ids_for_hosts(host_name(s) for s in range(n))
    for s in range(n):
        with transaction.atomic():
            writer.write_now(
                [(ids[host_name(s)], sp) for sp in _series_points(s, -1, points, base_ts)]
            )

    def items(j: int) -> list:
        server, rnd = request_slot(j, n)
        return [(ids[host_name(server)], sp) for sp in _series_points(server, rnd, points, base_ts)]

    per_txn = 1 if args.raw_mode == "per_request_txn" else REQUESTS_PER_GROUP
    groups = [range(j, min(j + per_txn, args.requests)) for j in range(0, args.requests, per_txn)]
    if args.raw_mode in ("per_request_txn", "grouped_txn"):
        prepare = lambda group: [items(j) for j in group]  # noqa: E731

        def write(batches) -> None:
            for batch in batches:
                writer.write_now(batch)

    else:
        series_id = {
            (sid, metric, key): pk
            for pk, sid, metric, key in Series.objects.values_list(
                "id", "server_id", "metric", "labels_key"
            )
        }

        def rows(group) -> list[tuple[int, int, float]]:
            out = []
            for j in group:
                for server_id, sp in items(j):
                    pk = series_id[(server_id, sp.metric, labels_key(sp.labels))]
                    out.extend((pk, t, v) for t, v in zip(sp.timestamps, sp.values, strict=True))
            return out

        prepare = rows
        copy_sql = "COPY metrics_sample (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
        if args.raw_mode == "ceiling_executemany":

            def write(prepared) -> None:
                connection.connection.executemany(
                    "INSERT OR IGNORE INTO metrics_sample (series_id, ts, value) VALUES (?, ?, ?)",
                    prepared,
                )

        elif args.raw_mode == "ceiling_copy_write_row":

            def write(prepared) -> None:
                with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                    copy.set_types(["int4", "int8", "float8"])
                    for row in prepared:
                        copy.write_row(row)

        else:
            prepare = lambda group: _binary_copy_buffer(rows(group))  # noqa: E731

            def write(prepared) -> None:
                with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                    copy.write(prepared)

    busy = 0.0
    for group in groups:
        prepared = prepare(group)
        t0 = time.perf_counter()
        with transaction.atomic():
            write(prepared)
        busy += time.perf_counter() - t0
    written = args.requests * SERIES_PER_SERVER * points
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics_sample")
        stored = cursor.fetchone()[0]
    backend_end = backend_cpu()
    return {
        "vendor": connection.vendor,
        "postgresql_cpu_seconds": backend_end - backend_start
        if backend_start is not None
        else None,
        "rows": written,
        "stored": stored - n * SERIES_PER_SERVER,
        "transactions": len(groups),
        "seconds": busy,
        "rows_per_second": written / busy,
    }


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


def _database_name(url: str | None) -> str | None:
    return url.rsplit("/", 1)[1].split("?", 1)[0] if url else None


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
        # History maintenance (rollups, compaction, retention) is off unless
        # --history-interval asks for it, so that ingest alone is measured.
        VIGIL_HISTORY_INTERVAL_SECONDS=os.environ.get("BENCH_HISTORY_INTERVAL", "0"),
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_raw(args, mode: str, data_dir: Path, database_url: str | None, base_ts: int, requests: int):
    """One raw mode in a child process, against a fresh migrated database."""
    env = _vigil_env(data_dir, database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "vigil.cli", "migrate", "--verbosity", "0"],
        env=env,
        check=True,
        timeout=300,
    )
    meter = CpuMeter().start()
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--raw-only",
            mode,
            "--servers",
            str(args.servers),
            "--points",
            str(args.points),
            "--requests",
            str(requests),
            "--base-ts",
            str(base_ts),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode:
        raise RuntimeError(f"raw mode {mode} failed:\n{out.stderr[-4000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    backend = figures.pop("postgresql_cpu_seconds", None)
    extra = {"postgresql": backend} if backend is not None else {}
    figures["cpu_cores"] = meter.stop(children="raw", **extra)
    return figures


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


def _machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "?",
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kb / 2**20, 1)}


def _code_version() -> dict:
    """The commit measured, and whether vigil/ had changes not yet committed."""
    here = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=10
            )
        except OSError:
            return ""
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "vigil_modified": bool(git("status", "--porcelain", "--", "vigil")),
    }


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
        "protocol": args.protocol,
        "servers": args.servers,
        "series_per_server": SERIES_PER_SERVER,
        "points": args.points,
        "samples_per_request": per_request,
        "duration": args.duration,
        "versions": _versions(pg_url),
        "machine": _machine(),
        "code": _code_version(),
    }
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        e2e_url = stack.enter_context(testing.scratch_database())
        server = testing.VigilProcess(tmp / "e2e", e2e_url, "--no-local-agent")
        server.env.update(kv.split("=", 1) for kv in args.server_env)
        log(f"starting vigil run on port {server.port} ({result['database']})…")
        stack.callback(server.stop)
        server.start(timeout=120)
        token = server.vigil("token", "create", "--name", "bench").strip().splitlines()[-1]
        e2e = run_end_to_end(
            args, server.port, token, server.proc.pid, _database_name(e2e_url), base_ts, log
        )
        server.stop()
        log_text = server.log_path.read_text(errors="replace")
        if args.server_log:
            args.server_log.write_text(log_text)
        e2e["server_log_problems"] = sum(
            (" ERROR " in line or " WARNING " in line) for line in log_text.splitlines()
        )
        e2e["stored_samples"] = _stored_samples(tmp / "e2e", e2e_url)
        e2e["warmup_samples"] = args.servers * SERIES_PER_SERVER
        result["end_to_end"] = e2e
        if args.py_spy:
            seconds = math.ceil(args.duration)
            result["profile"] = profile_summary(args.profile_out, seconds)
            result["profile"]["py_spy_args"] = args.py_spy_args

        if args.skip_raw:
            return result
        # The same requests as the end-to-end phase sent, at least a few groups.
        requests = max(e2e["requests_sent"], 3 * REQUESTS_PER_GROUP)
        modes = ["per_request_txn", "grouped_txn"]
        modes += (
            ["ceiling_copy_write_row", "ceiling_copy_buffer"] if pg_url else ["ceiling_executemany"]
        )
        result["raw"] = {}
        for mode in modes:
            log(f"raw baseline: {RAW_MODES[mode]}, {requests} requests into a fresh database…")
            with testing.scratch_database() as raw_url:
                result["raw"][mode] = run_raw(args, mode, tmp / mode, raw_url, base_ts, requests)
    rate = result["end_to_end"]["samples_per_second"]
    result["ratio_per_request_txn"] = rate / result["raw"]["per_request_txn"]["rows_per_second"]
    result["ratio_grouped_txn"] = rate / result["raw"]["grouped_txn"]["rows_per_second"]
    return result


# -- profile ---------------------------------------------------------------------------

# Threads of `vigil run`, told apart by a frame of their stack, and what each
# spends its time on (inclusive: a sample counts for every marker in its stack).
PROFILE_THREADS = {
    "writer thread": (
        "GroupCommitter._run (",
        [
            ("write_now", "write_now (vigil/ingest/writer.py"),
            ("  series ids", "_series_ids_for ("),
            ("  insert samples", "_insert_samples ("),
            ("  update last values", "_update_last_values ("),
            ("  mark servers seen", "_mark_seen ("),
            ("commit", "Atomic.__exit__ (django/db/transaction.py"),
            ("waiting for batches", "_take_group ("),
        ],
    ),
    "request threads": (
        "ThreadedTaskDispatcher.handler_thread (",
        [
            ("serving a request", "HTTPChannel.service ("),
            ("  token lookup", "authenticate (vigil/ingest/auth.py"),
            ("  read body", "read_body (vigil/ingest/body.py"),
            ("  parse and check", "parse (vigil/ingest/parsers/"),
            ("  server ids", "server_ids_for_hosts ("),
            ("  waiting for the writer", "GroupCommitter.submit ("),
        ],
    ),
    "waitress main loop": (
        "BaseWSGIServer.run (",
        [
            ("reading requests", "handle_read_event ("),
            ("writing responses", "handle_write_event ("),
        ],
    ),
    "scheduler": ("Scheduler._loop (", []),
}


def profile_summary(path: Path, seconds: float, rate: int = 100) -> dict:
    """Thread-seconds per second of wall time, by thread and marker, from py-spy's raw output.

    With --idle every thread is sampled at every tick, so a thread's total is about
    1.0; with --gil only the thread holding the GIL is, so the totals add up to the
    share of time the GIL was held.
    """
    stacks: list[tuple[str, int]] = []
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack, int(count)))
    ticks = seconds * rate
    threads: dict[str, dict[str, float]] = {}
    for kind, (frame, markers) in PROFILE_THREADS.items():
        mine = [(s, c) for s, c in stacks if frame in s]
        figures = {"all": sum(c for _, c in mine) / ticks}
        for name, marker in markers:
            figures[name] = sum(c for s, c in mine if marker in s) / ticks
        threads[kind] = figures
    own: Counter[str] = Counter()
    for stack, count in stacks:
        own[stack.rsplit(";", 1)[-1]] += count
    return {
        "samples": sum(c for _, c in stacks),
        "seconds": seconds,
        "threads": threads,
        "top_own": [(frame, c / ticks) for frame, c in own.most_common(12)],
    }


# -- report ------------------------------------------------------------------------------


def _fmt_cpu(cpu: dict[str, float]) -> str:
    parts = [f"{k} {v:.2f}" for k, v in cpu.items() if k != "machine" and (v >= 0.005)]
    return ", ".join(parts) + f" (machine {cpu['machine']:.2f} of {os.cpu_count()})"


def _fmt_rate(value: float) -> str:
    return f"{value:>12,.0f}"


def print_table(r: dict) -> None:
    e2e, raw = r["end_to_end"], r.get("raw")
    stored_ok = e2e["stored_samples"] == e2e["warmup_samples"] + e2e["samples"]
    print(
        f"\nVigil ingest benchmark: {r['database']}, {r['clients']} clients, "
        f"{r['servers']} servers x {r['series_per_server']} series, "
        f"{r['points']} points per series per request ({r['samples_per_request']:,} samples)"
    )
    m, code = r["machine"], r["code"]
    print("  " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    print(f"  {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB")
    dirty = " + uncommitted changes in vigil/" if code["vigil_modified"] else ""
    print(f"  commit {code['commit'] or '?'}{dirty}")
    print(f"\n  {'':<58}{'samples/s':>12}")
    print(
        f"  {'end to end (' + r['protocol'] + ' over HTTP, ' + str(r['clients']) + ' clients)':<58}"
        f"{_fmt_rate(e2e['samples_per_second'])}"
    )
    print(
        f"    {e2e['requests_per_second']:.1f} requests/s of "
        f"{e2e['mean_body_bytes'] / 1024:.0f} KiB, latency p50 "
        f"{e2e['latency_p50_ms']:.0f} ms, p99 {e2e['latency_p99_ms']:.0f} ms, "
        f"{e2e['wall_seconds']:.1f} s"
    )
    print(
        f"    {e2e['requests_ok']} x 204 of {e2e['requests_sent']} requests; "
        f"non-204: {e2e['non_204'] or 'none'}; stored {e2e['stored_samples']:,} "
        f"(= {e2e['warmup_samples']:,} warm-up + {e2e['samples']:,} answered 204: "
        f"{'yes' if stored_ok else 'NO'})"
    )
    if e2e["server_log_problems"]:
        print(f"    server log: {e2e['server_log_problems']} ERROR/WARNING lines (--server-log)")
    print(f"    CPU cores: {_fmt_cpu(e2e['cpu_cores'])}")
    if e2e["pool_exhausted"]:
        print("    (the pre-built bodies ran out: the measured phase ended early)")
    for mode, figures in (raw or {}).items():
        name = RAW_MODES[mode]
        if mode.startswith("ceiling"):
            name += f", {REQUESTS_PER_GROUP * r['samples_per_request'] // 1000}k rows/txn"
        print(f"  {name:<58}{_fmt_rate(figures['rows_per_second'])}")
        print(f"    CPU cores: {_fmt_cpu(figures['cpu_cores'])}")
        if figures["stored"] != figures["rows"]:
            print(f"    stored {figures['stored']:,} of {figures['rows']:,} rows: CHECK")
    if raw:
        print(f"\n  end to end / raw writer (1 txn per request) {r['ratio_per_request_txn']:6.0%}")
        print(f"  end to end / raw writer (grouped txn)       {r['ratio_grouped_txn']:6.0%}")
    if "profile" in r:
        p = r["profile"]
        print(
            f"\n  server profile: py-spy {p['py_spy_args'] or '(defaults)'}, {p['samples']} "
            "samples; thread-seconds per second of wall time:"
        )
        for kind, figures in p["threads"].items():
            print(f"    {kind:<50}{figures['all']:6.2f}")
            for name, value in figures.items():
                if name != "all":
                    print(f"      {name:<48}{value:6.2f}")
        print("  top frames by own time (thread-seconds per second):")
        for frame, value in p["top_own"]:
            print(f"    {value:5.2f}  {frame}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", help="postgres://... (default: DATABASE_URL or SQLite)")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="json",
        help="json: Vigil's /api/v1/ingest; influx: line protocol on /write",
    )
    parser.add_argument("--servers", type=int, default=500, help="monitored servers")
    parser.add_argument("--points", type=int, default=100, help="points per series per request")
    parser.add_argument("--duration", type=float, default=20, help="seconds of the measured phase")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment of the server (e.g. VIGIL_INGEST_GROUP_COMMIT=false); repeatable",
    )
    parser.add_argument("--server-log", type=Path, help="keep the server's log in this file")
    parser.add_argument("--skip-raw", action="store_true", help="end to end only")
    parser.add_argument(
        "--history-interval",
        type=int,
        help="run the server's history maintenance every S seconds during the run (default: off)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile the server")
    parser.add_argument(
        "--py-spy-args", default="", help="more py-spy record options (e.g. --gil, --threads)"
    )
    parser.add_argument(
        "--profile-out", type=Path, default=Path("ingest-profile.txt"), help="py-spy output"
    )
    parser.add_argument("--raw-only", dest="raw_mode", choices=RAW_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-ts", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.history_interval:
        os.environ["BENCH_HISTORY_INTERVAL"] = str(args.history_interval)
    if args.raw_mode:
        print(json.dumps(raw_main(args)))
        return
    try:
        result = run(args)
    except KeyboardInterrupt:
        # run() stopped the server and dropped the scratch databases on the way out.
        sys.exit("interrupted")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
