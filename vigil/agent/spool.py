"""The on-disk spool: every collection is a file until the server has stored it.

A batch is written to disk before anything is sent, so that an unreachable
server, a crash or a restart of the agent loses nothing. Each file is a ready
ingest body, `{"host": ..., "series": [...]}`, named
`<unix ms, 13 digits>-<sequence, 10 digits>-<points>.json`: sorting by
(time, sequence) gives the order of collection, and the point count lets the
sender size requests and the spool report drops without reading the files.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
NAME_RE = re.compile(r"^(\d{13})-(\d{10})-(\d+)\.json$")
LOCK_NAME = ".lock"
TMP_SUFFIX = ".tmp"
# While the spool stays full, one warning per this many seconds sums up the drops.
FULL_WARNING_EVERY = 300.0

Batch = dict[str, Any]


class SpoolLocked(RuntimeError):
    """Another agent uses this spool directory; two would send and delete each other's files."""


class CorruptBatch(ValueError):
    pass


@dataclass(frozen=True, slots=True, order=True)
class SpoolFile:
    ms: int
    seq: int
    points: int = field(compare=False)
    size: int = field(compare=False)
    path: Path = field(compare=False)

    @property
    def name(self) -> str:
        return self.path.name


def batch_points(batch: Batch) -> int:
    return sum(len(s["points"]) for s in batch["series"])


def load_batch(data: bytes) -> Batch:
    """Parse and check one spool file; raises CorruptBatch for anything unsendable."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptBatch(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("host"), str):
        raise CorruptBatch('not an object with a "host"')
    items = doc.get("series")
    if not isinstance(items, list):
        raise CorruptBatch('"series" is not a list')
    for item in items:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("metric"), str)
            and isinstance(item.get("labels"), dict)
            and isinstance(item.get("points"), list)
        ):
            raise CorruptBatch("a series is not {metric, labels, points}")
    return doc


class Spool:
    """A directory of batch files, oldest sent first, bounded by `max_bytes`.

    Thread-safe for one writer (the collection loop) and one reader (the
    sender). A lock file keeps a second agent out of the same directory.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._new_data = threading.Event()
        self._files: list[SpoolFile] = []
        self._bytes = 0
        self._next_seq = 0
        self._unreported_batches = 0
        self._unreported_points = 0
        self._last_full_warning: float | None = None
        self._lock_fd = self._acquire_lock()
        self._scan()

    # -- life cycle

    def _acquire_lock(self) -> int:
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLocked(
                f"the spool {self.directory} is in use by another agent; "
                "give each agent its own --spool-dir"
            ) from None
        return fd

    def _scan(self) -> None:
        """Pick up the batches a previous run left behind."""
        for path in self.directory.iterdir():
            if path.name.endswith(TMP_SUFFIX):
                # Written by a run that died before renaming it: never complete.
                log.warning("agent spool: removing unfinished file %s", path.name)
                path.unlink(missing_ok=True)
                continue
            match = NAME_RE.match(path.name)
            if not match:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            ms, seq, points = (int(g) for g in match.groups())
            self._files.append(SpoolFile(ms, seq, points, size, path))
            self._bytes += size
            self._next_seq = max(self._next_seq, seq + 1)
        self._files.sort()
        if self._files:
            log.info(
                "agent spool: %d batches (%d samples) left from a previous run in %s",
                len(self._files),
                self.points,
                self.directory,
            )
            self._new_data.set()

    def close(self) -> None:
        with self._lock:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- state

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def points(self) -> int:
        with self._lock:
            return sum(f.points for f in self._files)

    def pending(self) -> list[SpoolFile]:
        """The spooled batches, oldest first."""
        with self._lock:
            return list(self._files)

    def wait(self, timeout: float) -> bool:
        """Wait until a batch is written (or wake() is called); True if one was."""
        woken = self._new_data.wait(timeout)
        self._new_data.clear()
        return woken

    def wake(self) -> None:
        self._new_data.set()

    # -- writing

    def write(self, host: str, series: list[dict[str, Any]], now: float | None = None) -> SpoolFile:
        """Store one collection durably, dropping the oldest batches if the spool is full.

        1. Write a temporary file and fsync it.
        2. Rename it to its final name (atomic) and fsync the directory, so a
           crash leaves either the whole batch or nothing.
        3. Add it to the index and enforce the size bound.
        """
        now = time.time() if now is None else now
        data = orjson.dumps({"host": host, "series": series})
        points = sum(len(s["points"]) for s in series)
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
        name = f"{int(now * 1000):013d}-{seq:010d}-{points}.json"
        path = self.directory / name
        tmp = self.directory / f".{name}{TMP_SUFFIX}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._fsync_directory()
        entry = SpoolFile(int(now * 1000), seq, points, len(data), path)
        with self._lock:
            bisect.insort(self._files, entry)
            self._bytes += entry.size
            self._enforce_bound(keep=entry)
        self._new_data.set()
        return entry

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _enforce_bound(self, keep: SpoolFile) -> None:
        """Drop the oldest batches past max_bytes (caller holds the lock)."""
        dropped: list[SpoolFile] = []
        while self._bytes > self.max_bytes:
            # Never drop what was just collected, even if a clock step made it the oldest.
            candidates = [f for f in self._files[:2] if f != keep]
            if not candidates:
                break
            oldest = candidates[0]
            self._files.remove(oldest)
            self._bytes -= oldest.size
            oldest.path.unlink(missing_ok=True)
            dropped.append(oldest)
        self._report_drops(dropped)

    def _report_drops(self, dropped: list[SpoolFile]) -> None:
        self._unreported_batches += len(dropped)
        self._unreported_points += sum(f.points for f in dropped)
        if not self._unreported_batches:
            return
        now = time.monotonic()
        due = self._last_full_warning is None or now - self._last_full_warning >= FULL_WARNING_EVERY
        # Speak at once when the spool first fills, then sum up at most every
        # few minutes, and once more when it stops being full.
        if not (due or not dropped):
            return
        oldest_kept = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._files[0].ms / 1000))
            if self._files
            else "-"
        )
        log.warning(
            "agent spool %s %s full (limit %.1f MB): dropped the %d oldest batches "
            "(%d samples) to make room; the oldest sample kept is from %s. "
            "The ingest server has not accepted data for a while; "
            "raise --max-spool-mb to keep a longer outage.",
            self.directory,
            "is" if dropped else "was",
            self.max_bytes / (1024 * 1024),
            self._unreported_batches,
            self._unreported_points,
            oldest_kept,
        )
        self._unreported_batches = 0
        self._unreported_points = 0
        self._last_full_warning = now if dropped else None

    # -- reading and removing

    def read(self, entry: SpoolFile) -> Batch | None:
        """The batch in `entry`; None if it is gone or corrupt (then it is removed and logged)."""
        try:
            data = entry.path.read_bytes()
        except FileNotFoundError:  # dropped by the size bound meanwhile
            self._forget([entry])
            return None
        try:
            return load_batch(data)
        except CorruptBatch as exc:
            log.error(
                "agent spool: removing corrupt batch %s (%d bytes, %d samples lost): %s",
                entry.name,
                len(data),
                entry.points,
                exc,
            )
            self.remove([entry])
            return None

    def remove(self, entries: Iterable[SpoolFile]) -> None:
        """Delete batches the server has answered for."""
        entries = list(entries)
        for entry in entries:
            entry.path.unlink(missing_ok=True)
        self._forget(entries)

    def _forget(self, entries: list[SpoolFile]) -> None:
        with self._lock:
            for entry in entries:
                i = bisect.bisect_left(self._files, entry)
                if i < len(self._files) and self._files[i] == entry:
                    del self._files[i]
                    self._bytes -= entry.size
