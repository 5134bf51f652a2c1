"""Sending spooled batches to the ingest endpoint, oldest first.

Delivery is at least once: a batch is deleted only after the server answered
for it, and the server stores a sample once per (series, timestamp), so a
batch sent twice (a lost answer, a crash after sending) is stored once.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from vigil.agent.backoff import Backoff, parse_retry_after
from vigil.agent.spool import Batch, Spool, SpoolFile

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/ingest"
MAX_POINTS_PER_REQUEST = 5000
TIMEOUT = 10.0
# Answers that say this batch can never be stored as it is: resending it would
# only block the batches behind it. (413 is handled on its own: it may be the merge.)
PERMANENT_STATUSES = frozenset({400, 415, 422})
MAX_LOGGED_BODY = 1000
USER_AGENT = "vigil-agent/0.1"


@dataclass(slots=True)
class Answer:
    status: int | None  # None when no HTTP answer came (refused, reset, timeout)
    body: bytes = b""
    retry_after: float | None = None
    error: str = ""

    def describe(self) -> str:
        if self.status is None:
            return self.error
        text = self.body[:MAX_LOGGED_BODY].decode("utf-8", "replace").strip()
        return f"HTTP {self.status}" + (f": {text}" if text else "")


def ingest_url(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of the ingest endpoint under the server's base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the server URL must be http:// or https://, not {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(INGEST_PATH):
        path += INGEST_PATH
    return parts.scheme, parts.hostname, parts.port, path


def merge_batches(batches: list[Batch]) -> list[dict[str, Any]]:
    """One series list for several batches of one host: each series once, points in order."""
    merged: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
    for batch in batches:
        for item in batch["series"]:
            key = (item["metric"], tuple(sorted(item["labels"].items())))
            if key in merged:
                merged[key]["points"].extend(item["points"])
            else:
                merged[key] = {
                    "metric": item["metric"],
                    "labels": item["labels"],
                    "points": list(item["points"]),
                }
    return list(merged.values())


class Sender:
    """Drains a Spool into the ingest endpoint; `step()` makes one request, `run()` loops."""

    def __init__(
        self,
        spool: Spool,
        url: str,
        token: str,
        *,
        timeout: float = TIMEOUT,
        max_points: int = MAX_POINTS_PER_REQUEST,
        backoff: Backoff | None = None,
    ) -> None:
        self.spool = spool
        self.url = url
        self.scheme, self.host, self.port, self.path = ingest_url(url)
        self.token = token
        self.timeout = timeout
        self.max_points = max_points
        self.backoff = backoff or Backoff()
        self.state = "ok"  # or "unavailable", "token", "unexpected": logged on change only
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    # -- the loop

    def run(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        """Send until `stop` is set, waiting for new batches or out a backoff in between."""
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception:
                # A bug here must not end delivery: the batches are safe on disk.
                log.exception("agent: unexpected error while sending; retrying")
                delay = self.backoff.next_delay()
            if delay is None:
                self.spool.wait(idle_wait)
            elif delay > 0:
                stop.wait(delay)

    def step(self) -> float | None:
        """Send the oldest spooled batches in one request.

        Returns None when the spool is empty, 0 to go on at once, or the seconds
        to wait before trying again.
        """
        group = self._next_group()
        if group is None:
            return None
        if not group:
            return 0.0  # only corrupt files, now removed
        return self._deliver(group)

    def _next_group(self) -> list[tuple[SpoolFile, Batch]] | None:
        """The oldest batches of one host, up to max_points (always at least one)."""
        pending = self.spool.pending()
        if not pending:
            return None
        group: list[tuple[SpoolFile, Batch]] = []
        points = 0
        for entry in pending:
            if group and points + entry.points > self.max_points:
                break
            batch = self.spool.read(entry)
            if batch is None:
                continue
            if group and batch["host"] != group[0][1]["host"]:
                break  # the host name changed between runs: one request per host
            group.append((entry, batch))
            points += entry.points
        return group

    # -- one request and its answer

    def _deliver(self, group: list[tuple[SpoolFile, Batch]]) -> float:
        entries = [entry for entry, _ in group]
        points = sum(entry.points for entry in entries)
        answer = self._post(group[0][1]["host"], merge_batches([b for _, b in group]))
        status = answer.status

        if status is not None and 200 <= status < 300:
            self.spool.remove(entries)
            self._recovered()
            return 0.0
        if status == 413 and len(group) > 1:
            # The server's body limit is below our merged requests: send these
            # one by one, and merge less from now on.
            self.max_points = max(1, min(self.max_points, points // 2))
            log.warning(
                "agent: the ingest server refused %d samples in one request as too large "
                "(413); sending %d batches one by one and at most %d samples per request",
                points,
                len(group),
                self.max_points,
            )
            for item in group:
                delay = self._deliver([item])
                if delay:
                    return delay
            return 0.0
        if status == 413 or status in PERMANENT_STATUSES:
            log.error(
                "agent: the ingest server rejected %d samples from %d spooled batches "
                "for good; dropping what it did not keep: %s",
                points,
                len(entries),
                answer.describe(),
            )
            self.spool.remove(entries)
            self._recovered()
            return 0.0
        if status in (401, 403):
            self._failed(
                "token",
                logging.ERROR,
                f"ingest token rejected: {answer.describe()}. Check --token; "
                f"keeping the data and retrying",
            )
            return self.backoff.next_delay()
        if status is None or status in (408, 429) or status >= 500:
            self._failed(
                "unavailable",
                logging.WARNING,
                f"ingest server {self.url} unavailable ({answer.describe()}); "
                f"keeping the data and retrying",
            )
            return self.backoff.next_delay(answer.retry_after)
        # 404 (a wrong URL or a proxy), 3xx, 409 and the like: a configuration
        # problem the operator can fix, so keep the data.
        self._failed(
            "unexpected",
            logging.ERROR,
            f"unexpected answer from {self.url}: {answer.describe()}; "
            f"keeping the data and retrying",
        )
        return self.backoff.next_delay(answer.retry_after)

    def _post(self, host: str, series: list[dict[str, Any]]) -> Answer:
        body = gzip.compress(orjson.dumps({"host": host, "series": series}), compresslevel=6)
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {self.token}",
            "User-Agent": USER_AGENT,
        }
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(64 * 1024)
            return Answer(
                response.status, data, parse_retry_after(response.getheader("Retry-After"))
            )
        except (OSError, http.client.HTTPException) as exc:
            return Answer(None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        finally:
            conn.close()

    # -- logging state changes once

    def _failed(self, state: str, level: int, message: str) -> None:
        if self.state != state:
            log.log(level, "agent: %s (%d samples spooled)", message, self.spool.points)
        else:
            log.debug("agent: %s", message)
        self.state = state

    def _recovered(self) -> None:
        if self.state != "ok":
            log.info(
                "agent: ingest server %s accepts data again after %d failed attempts; "
                "%d samples left to catch up",
                self.url,
                self.backoff.failures,
                self.spool.points,
            )
        self.state = "ok"
        self.backoff.reset()
