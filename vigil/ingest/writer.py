"""The one bulk writer that every ingest endpoint uses.

1. Host names become server ids (cached; new servers registered in bulk).
2. (server, metric, labels) become series ids (cached; new series in bulk).
3. Samples go in with the database's fast path: INSERT OR IGNORE into the
   WITHOUT ROWID table on SQLite, binary COPY on PostgreSQL (falling back to
   INSERT ... ON CONFLICT DO NOTHING when the batch repeats stored samples).
4. The newest value of each series and the servers' last_seen are updated.

With group commit on, one writer thread per process takes the batches of
concurrent requests and commits them in one transaction: a commit costs a
page write per touched series, so committing 20 requests at once is far
cheaper than 20 commits. Each request is answered only after its group is
committed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from vigil.ingest.parsers.base import GAUGE, Labels, SeriesPoints
from vigil.ingest.precision import significant
from vigil.ingest.rates import Reading, counter_rates
from vigil.metrics.models import Late, Sample, Series, labels_key
from vigil.servers.models import IngestToken, Server

log = logging.getLogger(__name__)

Item = tuple[int, SeriesPoints]  # (server id, points)


class Overloaded(Exception):
    """The writer cannot take more now; the client should retry later."""


class UnknownServers(Exception):
    def __init__(self, hosts: list[str]) -> None:
        super().__init__(f"host names already used by another server: {', '.join(hosts)}")
        self.hosts = hosts


_lock = threading.Lock()
_server_ids: dict[str, int] = {}
_series_ids: dict[tuple[int, str, Labels], int] = {}


def clear_caches() -> None:
    with _lock:
        _server_ids.clear()
        _series_ids.clear()


@receiver(post_delete, sender=Server)
@receiver(post_delete, sender=Series)
def _forget_deleted(**kwargs) -> None:
    clear_caches()


def server_ids_for_hosts(hosts: Iterable[str]) -> dict[str, int]:
    """Server ids by host name, registering servers that are new."""
    hosts = set(hosts)
    with _lock:
        found = {h: _server_ids[h] for h in hosts if h in _server_ids}
    missing = hosts - found.keys()
    if missing:
        # Read first: after a restart every host is known, and a read never
        # waits for the write lock.
        fetched = dict(Server.objects.filter(host_name__in=missing).values_list("host_name", "id"))
        new = missing - fetched.keys()
        if new:
            Server.objects.bulk_create(
                [Server(name=h, host_name=h) for h in sorted(new)], ignore_conflicts=True
            )
            rows = Server.objects.filter(host_name__in=new).values_list("host_name", "id")
            fetched.update(rows)
            if len(fetched) < len(missing):
                raise UnknownServers(sorted(missing - fetched.keys()))
        transaction.on_commit(lambda: _remember_servers(fetched))
        found.update(fetched)
    return found


def _series_ids_for(items: list[Item]) -> list[int]:
    keys = [(sid, sp.metric, sp.labels) for sid, sp in items]
    with _lock:
        ids = [_series_ids.get(k) for k in keys]
    missing = {k for k, i in zip(keys, ids, strict=True) if i is None}
    if missing:
        fetched = _fetch_series(missing)
        new = missing - fetched.keys()
        if new:
            Series.objects.bulk_create(
                [
                    Series(server_id=s, metric=m, labels=dict(lb), labels_key=labels_key(lb))
                    for s, m, lb in sorted(new)
                ],
                ignore_conflicts=True,
            )
            fetched.update(_fetch_series(new))
        # Remembered only once committed: a rolled back series has no row.
        transaction.on_commit(lambda: _remember_series(fetched))
        ids = [i if i is not None else fetched[k] for k, i in zip(keys, ids, strict=True)]
    return ids


def _fetch_series(keys: set[tuple[int, str, Labels]]) -> dict[tuple[int, str, Labels], int]:
    wanted = {(s, m, labels_key(lb)): (s, m, lb) for s, m, lb in keys}
    rows = Series.objects.filter(
        server_id__in={s for s, _, _ in keys}, metric__in={m for _, m, _ in keys}
    ).values_list("id", "server_id", "metric", "labels_key")
    return {wanted[k]: i for i, *rest in rows if (k := tuple(rest)) in wanted}


def _remember_servers(ids: dict[str, int]) -> None:
    with _lock:
        _server_ids.update(ids)


def _remember_series(ids: dict[tuple[int, str, Labels], int]) -> None:
    with _lock:
        _series_ids.update(ids)


def _insert_samples(ids: list[int], ts: list[int], values: list[float]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy_postgresql(cursor, ids, ts, values)
        else:
            _insert_sqlite(cursor, ids, ts, values)


SQLITE_ROWS_PER_STATEMENT = 999


def _insert_sqlite(cursor, ids: list[int], ts: list[int], values: list[float]) -> None:
    """Multi-row INSERTs: sqlite3 hands the GIL back and forth once per statement,
    not once per row as executemany does, so parsing threads cannot stall it."""
    rows = SQLITE_ROWS_PER_STATEMENT
    full = len(ids) - len(ids) % rows
    if full:
        sql = _sqlite_insert_sql(rows)
        params = [
            [
                v
                for row in zip(
                    ids[i : i + rows], ts[i : i + rows], values[i : i + rows], strict=True
                )
                for v in row
            ]
            for i in range(0, full, rows)
        ]
        cursor.executemany(sql, params)
    if full < len(ids):
        rest = list(zip(ids[full:], ts[full:], values[full:], strict=True))
        cursor.execute(_sqlite_insert_sql(len(rest)), [v for row in rest for v in row])


@functools.cache
def _sqlite_insert_sql(rows: int) -> str:
    values = ",".join(["(%s,%s,%s)"] * rows)
    return f"INSERT OR IGNORE INTO metrics_sample (series_id, ts, value) VALUES {values}"  # noqa: S608


def _copy_postgresql(cursor, ids: list[int], ts: list[int], values: list[float]) -> None:
    import psycopg

    sid = transaction.savepoint()
    try:
        with cursor.cursor.copy(
            "COPY metrics_sample (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "float8"])
            for row in zip(ids, ts, values, strict=True):
                copy.write_row(row)
        transaction.savepoint_commit(sid)
    except psycopg.errors.UniqueViolation:
        # Some samples are stored already (a retry): keep the others.
        transaction.savepoint_rollback(sid)
        cursor.execute(
            "INSERT INTO metrics_sample (series_id, ts, value) "
            "SELECT * FROM unnest(%s::int4[], %s::int8[], %s::float8[]) "
            "ON CONFLICT DO NOTHING",
            [ids, ts, values],
        )


def _update_last_values(newest: dict[int, tuple[int, float]]) -> None:
    # Sorted ids: concurrent writers lock series rows in the same order.
    ordered = sorted(newest.items())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE metrics_series AS s SET last_ts = v.ts, last_value = v.value "
                "FROM unnest(%s::int4[], %s::int8[], %s::float8[]) AS v(id, ts, value) "
                "WHERE s.id = v.id AND (s.last_ts IS NULL OR s.last_ts <= v.ts)",
                [
                    [i for i, _ in ordered],
                    [t for _, (t, _) in ordered],
                    [v for _, (_, v) in ordered],
                ],
            )
        else:
            cursor.executemany(
                "UPDATE metrics_series SET last_ts = %s, last_value = %s "
                "WHERE id = %s AND (last_ts IS NULL OR last_ts <= %s)",
                [(t, v, i, t) for i, (t, v) in ordered],
            )


def _insert_late_marks(marks: list[tuple[int, int, int]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO metrics_late (kind, series_id, start) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            marks,
        )


def _mark_seen(server_ids: set[int]) -> None:
    Server.objects.filter(pk__in=server_ids).update(
        last_seen=timezone.now(),
        status=Case(
            When(status=Server.Status.RETIRED, then=Value(Server.Status.RETIRED)),
            default=Value(Server.Status.UP),
        ),
    )


class SampleLookup:
    """Stored samples of one server's native series, for derivations that need
    sibling values sent in another request (collectd sends each value alone)."""

    def values(
        self, server_id: int, metric: str, timestamps: Iterable[int]
    ) -> list[tuple[dict[str, str], int, float]]:
        """(labels, ts, value) of every series of `metric` on the server at those times."""
        timestamps = sorted(set(timestamps))
        if not timestamps:
            return []
        rows = Sample.objects.filter(
            series__server_id=server_id, series__metric=metric, ts__in=timestamps
        ).values_list("series__labels", "ts", "value")
        return list(rows)

    def labels(self, server_id: int, metric: str) -> list[dict[str, str]]:
        """The label sets of every series of `metric` the server has ever sent."""
        rows = Series.objects.filter(server_id=server_id, metric=metric)
        return list(rows.values_list("labels", flat=True))


Deriver = Callable[[list[Item], SampleLookup], list[Item]]


def _apply_counters(items: list[Item], series_ids: list[int]) -> tuple[list[Item], list[int]]:
    """Counter points become per-second rates; the last raw reading is kept per series."""
    counter_ids = [sid for sid, (_, sp) in zip(series_ids, items, strict=True) if sp.kind != GAUGE]
    qs = Series.objects.filter(pk__in=counter_ids)
    if connection.vendor == "postgresql":
        # Two web nodes taking two requests of one agent compute in turn.
        qs = qs.select_for_update().order_by("pk")
    state: dict[int, Reading | None] = {
        pk: (t, v) if t is not None else None
        for pk, t, v in qs.values_list("pk", "counter_ts", "counter_value")
    }
    out_items: list[Item] = []
    out_ids: list[int] = []
    for series_id, (server_id, sp) in zip(series_ids, items, strict=True):
        if sp.kind != GAUGE:
            ts, values, state[series_id] = counter_rates(
                state.get(series_id), sp.timestamps, sp.values, sp.kind
            )
            if not ts:
                continue
            sp = SeriesPoints(sp.host, sp.metric, sp.labels, ts, significant(values))
        out_items.append((server_id, sp))
        out_ids.append(series_id)
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE metrics_series SET counter_ts = %s, counter_value = %s WHERE id = %s",
            [(r[0], r[1], pk) for pk, r in sorted(state.items()) if r is not None],
        )
    return out_items, out_ids


def _store(items: list[Item], series_ids: list[int], pending: Pending) -> int:
    ids: list[int] = []
    ts: list[int] = []
    values: list[float] = []
    newest = pending.newest
    late_before = int(time.time()) - settings.HISTORY_LATE_SECONDS
    for series_id, (_, sp) in zip(series_ids, items, strict=True):
        n = len(sp.timestamps)
        ids.extend([series_id] * n)
        ts.extend(sp.timestamps)
        values.extend(sp.values)
        last = max(range(n), key=sp.timestamps.__getitem__)
        if series_id not in newest or newest[series_id][0] <= sp.timestamps[last]:
            newest[series_id] = (sp.timestamps[last], sp.values[last])
        if min(sp.timestamps) < late_before:
            pending.mark_late(series_id, [t for t in sp.timestamps if t < late_before])
    _insert_samples(ids, ts, values)
    return len(ids)


@dataclass(frozen=True)
class Rejected:
    """Samples of a request that ingest refused, counted on its servers."""

    server_ids: frozenset[int]
    count: int
    message: str


@dataclass
class Pending:
    """What the batches of one transaction leave to do once, at its end."""

    newest: dict[int, tuple[int, float]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    tokens: set[int] = field(default_factory=set)
    rejected: list[Rejected] = field(default_factory=list)
    # (kind, series_id, start) of late samples: their rollup hour and block window.
    late: set[tuple[int, int, int]] = field(default_factory=set)

    def mark_late(self, series_id: int, timestamps: list[int]) -> None:
        window = settings.HISTORY_BLOCK_SECONDS
        for t in timestamps:
            self.late.add((Late.ROLLUP, series_id, t - t % 3600))
            self.late.add((Late.COMPACT, series_id, t - t % window))

    def finish(self) -> None:
        _update_last_values(self.newest)
        if self.late:
            _insert_late_marks(sorted(self.late))
        if self.seen:
            _mark_seen(self.seen)
        if self.tokens:
            IngestToken.objects.filter(pk__in=self.tokens).update(last_used=timezone.now())
        for r in self.rejected:
            Server.objects.filter(pk__in=r.server_ids).update(
                rejected_samples=F("rejected_samples") + r.count,
                last_rejection=r.message[:1000],
                last_rejection_at=timezone.now(),
            )


def _write_items(items: list[Item], derive: Deriver | None, pending: Pending) -> int:
    """1. Native series are stored under their own names; counters as rates.
    2. `derive` maps them to the canonical metrics, which are stored too."""
    series_ids = _series_ids_for(items)
    if any(sp.kind != GAUGE for _, sp in items):
        items, series_ids = _apply_counters(items, series_ids)
    written = _store(items, series_ids, pending) if items else 0
    derived = derive(items, SampleLookup()) if derive and items else []
    derived = [
        (
            server_id,
            SeriesPoints(sp.host, sp.metric, sp.labels, sp.timestamps, significant(sp.values)),
        )
        for server_id, sp in derived
        if sp.timestamps
    ]
    if derived:
        written += _store(derived, _series_ids_for(derived), pending)
    return written


def write_now(
    items: list[Item],
    mark_seen: bool = True,
    touch_token: int | None = None,
    derive: Deriver | None = None,
    rejected: Rejected | None = None,
) -> int:
    """Write the items in the current transaction; returns the points written.

    mark_seen=False writes without counting as a report from the servers
    (Vigil's own `up` samples). touch_token refreshes a token's last_used here,
    so that request threads never write.
    """
    if not items and rejected is None:
        return 0
    pending = Pending()
    written = _write_items(items, derive, pending) if items else 0
    if rejected is not None:
        pending.rejected.append(rejected)
    if mark_seen:
        pending.seen.update(server_id for server_id, _ in items)
    if touch_token is not None:
        pending.tokens.add(touch_token)
    pending.finish()
    return written


def _write_group(group: list[Entry]) -> list[int]:
    """The batches of one group commit; newest values and last_seen once for all."""
    pending = Pending()
    counts = []
    for entry in group:
        counts.append(_write_items(entry.items, entry.derive, pending) if entry.items else 0)
        pending.seen.update(server_id for server_id, _ in entry.items)
        if entry.touch_token is not None:
            pending.tokens.add(entry.touch_token)
        if entry.rejected is not None:
            pending.rejected.append(entry.rejected)
    pending.finish()
    return counts


@dataclass(slots=True)
class Entry:
    items: list[Item]
    rows: int
    future: Future
    touch_token: int | None
    derive: Deriver | None
    rejected: Rejected | None = None


class GroupCommitter:
    """A writer thread that commits the batches of concurrent requests together."""

    def __init__(self, max_rows: int, queue_max_rows: int, timeout: float = 60.0) -> None:
        self.max_rows = max_rows
        self.queue_max_rows = queue_max_rows
        self.timeout = timeout
        self._queue: deque[Entry] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.groups_committed = 0
        self.batches_committed = 0

    def submit(
        self,
        items: list[Item],
        touch_token: int | None = None,
        derive: Deriver | None = None,
        rejected: Rejected | None = None,
    ) -> int:
        rows = sum(len(sp.timestamps) for _, sp in items)
        future: Future = Future()
        with self._cond:
            if self._queued_rows and self._queued_rows + rows > self.queue_max_rows:
                raise Overloaded(f"{self._queued_rows} samples are waiting to be written")
            self._queue.append(Entry(items, rows, future, touch_token, derive, rejected))
            self._queued_rows += rows
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vigil-writer", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            raise Overloaded("the database did not commit in time") from None

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued batches, then stop the thread and close its connection."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take_group(self) -> list[Entry] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            group = [self._queue.popleft()]
            rows = group[0].rows
            while self._queue and rows + self._queue[0].rows <= self.max_rows:
                entry = self._queue.popleft()
                group.append(entry)
                rows += entry.rows
            self._queued_rows -= rows
            return group

    @staticmethod
    def _write_alone(entry: Entry) -> None:
        try:
            with transaction.atomic():
                (count,) = _write_group([entry])
        except Exception as exc:
            connection.close()
            entry.future.set_exception(exc)
            return
        entry.future.set_result(count)

    def _run(self) -> None:
        while True:
            group = self._take_group()
            if group is None:
                connection.close()
                return
            started = time.monotonic()
            try:
                with transaction.atomic():
                    counts = _write_group(group)
            except Exception as exc:
                log.warning("group commit of %d batches failed: %s", len(group), exc)
                # A broken connection is replaced on the next try.
                connection.close()
                # One bad batch must not fail the others: write each alone.
                for entry in group:
                    self._write_alone(entry)
                continue
            self.groups_committed += 1
            self.batches_committed += len(group)
            for entry, count in zip(group, counts, strict=True):
                entry.future.set_result(count)
            log.debug(
                "committed %d batches, %d samples in %.1f ms",
                len(group),
                sum(counts),
                (time.monotonic() - started) * 1000,
            )


_committer: GroupCommitter | None = None


def committer() -> GroupCommitter | None:
    """The process's writer thread, once the first grouped write started it."""
    return _committer


def write(
    items: list[Item],
    touch_token: int | None = None,
    derive: Deriver | None = None,
    rejected: Rejected | None = None,
) -> int:
    """Store the items durably; returns once they are committed."""
    global _committer
    if not settings.INGEST_GROUP_COMMIT:
        with transaction.atomic():
            return write_now(items, touch_token=touch_token, derive=derive, rejected=rejected)
    if _committer is None:
        with _lock:
            if _committer is None:
                _committer = GroupCommitter(
                    settings.INGEST_GROUP_MAX_ROWS, settings.INGEST_QUEUE_MAX_ROWS
                )
    return _committer.submit(items, touch_token, derive, rejected)
