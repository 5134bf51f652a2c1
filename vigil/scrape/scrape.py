"""Scraping exporters: claim the due targets, fetch them concurrently, store.

1. Claim: each due target's `next_due` is moved forward with a conditional
   update; only the worker whose update won scrapes it, so any number of
   workers (and the embedded scheduler) can run `scrape_due` at once.
2. Fetch and parse in a small thread pool, with no database access there:
   each request is bounded by the target's timeout and SCRAPE_MAX_BYTES, and
   goes through vigil.lib.http (the SSRF guard).
3. Store, one transaction per target, in the calling thread: the samples
   through the bulk writer with node_exporter's canonical mapping; or, when
   the scrape failed, an `up` sample 0 for the server; then the target's state.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction

from vigil.ingest import writer
from vigil.ingest.canonical import node_exporter
from vigil.ingest.parsers import prometheus_text
from vigil.ingest.parsers.base import ParseError, SeriesPoints
from vigil.lib import http
from vigil.scrape.models import ScrapeTarget

log = logging.getLogger(__name__)

# Ask for the text format: exporters would otherwise answer OpenMetrics or protobuf.
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


@dataclass(frozen=True)
class Claimed:
    pk: int
    server_id: int
    url: str
    timeout: float


@dataclass
class Scraped:
    target: Claimed
    ts: int
    duration: float = 0.0
    error: str = ""
    series: list[SeriesPoints] | None = None
    samples: int = 0
    skipped: int = 0


def allowed_networks() -> list[http.Network]:
    """The private networks scrapes may reach (none unless configured)."""
    if settings.SCRAPE_ALLOW_PRIVATE:
        return list(http.ALL_NETWORKS)
    return http.parse_networks(settings.SCRAPE_ALLOWED_NETWORKS)


def _moment(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def claim_due(now: float, limit: int) -> list[Claimed]:
    """Claim up to `limit` due targets by moving their next_due forward."""
    moment = _moment(now)
    due = list(
        ScrapeTarget.objects.filter(enabled=True, next_due__lte=moment)
        .order_by("next_due")
        .values_list("pk", "next_due", "interval", "server_id", "url", "timeout")[:limit]
    )
    claimed: list[Claimed] = []
    if not due:
        # No transaction when nothing is due: on SQLite it would queue for the
        # write lock behind ingest every tick.
        return claimed
    with transaction.atomic():
        for pk, next_due, interval, server_id, url, timeout in due:
            # Keep the phase of the target; one that fell behind skips the
            # turns it missed rather than scraping in a burst.
            new_due = next_due + timedelta(seconds=interval)
            if new_due <= moment:
                new_due = moment + timedelta(seconds=interval)
            won = ScrapeTarget.objects.filter(pk=pk, next_due=next_due).update(next_due=new_due)
            if won == 1:
                claimed.append(Claimed(pk, server_id, url, min(timeout, interval)))
    return claimed


def fetch(target: Claimed, allowed: list[http.Network], max_bytes: int) -> Scraped:
    """Scrape and parse one target; never raises, never touches the database."""
    started = time.time()
    scraped = Scraped(target, int(started))
    try:
        response = http.get(
            target.url,
            headers={"Accept": ACCEPT},
            timeout=target.timeout,
            max_bytes=max_bytes,
            allowed_networks=allowed,
        )
        content_type = response.header("content-type")
        if response.status != 200:
            scraped.error = f"the exporter answered HTTP {response.status}"
        elif "protobuf" in content_type:
            scraped.error = f"the exporter answered {content_type[:60]!r}, not the text format"
        else:
            result = prometheus_text.parse(response.body, started)
            if result.points > settings.SCRAPE_MAX_SAMPLES:
                scraped.error = (
                    f"{result.points} samples are more than SCRAPE_MAX_SAMPLES "
                    f"({settings.SCRAPE_MAX_SAMPLES})"
                )
            else:
                scraped.series = result.series
                scraped.samples = result.points
                scraped.skipped = result.rejected + result.non_finite
                if result.errors:
                    scraped.error = (
                        f"partial: {result.rejected} lines rejected; first {result.errors[0]}"
                    )
    except http.BlockedAddress as exc:
        scraped.error = (
            f"{exc}: allow the network with VIGIL_SCRAPE_ALLOWED_NETWORKS "
            f"(or VIGIL_SCRAPE_ALLOW_PRIVATE=true)"
        )
    except http.HttpError as exc:
        scraped.error = str(exc)
    except ParseError as exc:
        scraped.error = f"unparsable answer: {exc}"
    except Exception as exc:  # a bug must cost one scrape, not the whole run
        log.exception("scrape of target %s failed", target.pk)
        scraped.error = f"internal error: {type(exc).__name__}"
    scraped.duration = time.time() - started
    return scraped


def fetch_all(targets: list[Claimed]) -> list[Scraped]:
    """Fetch concurrently; a request that outlives its deadline is given up."""
    allowed = allowed_networks()
    workers = max(1, min(settings.SCRAPE_CONCURRENCY, len(targets)))
    rounds = math.ceil(len(targets) / workers)
    # Requests bound themselves; this only covers a hanging name resolution.
    budget = rounds * max(t.timeout for t in targets) + 5
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-scrape")
    try:
        futures = {pool.submit(fetch, t, allowed, settings.SCRAPE_MAX_BYTES): t for t in targets}
        done, _ = wait(futures, timeout=budget)
        out = []
        for future, target in futures.items():
            if future in done:
                out.append(future.result())
            else:
                out.append(
                    Scraped(target, int(time.time()), budget, f"no answer within {budget:g} s")
                )
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def record(scraped: Scraped) -> int:
    """Store one scrape's samples (or its failure) and the target's state."""
    target = scraped.target
    written = 0
    with transaction.atomic():
        if scraped.series is not None:
            items = [(target.server_id, sp) for sp in scraped.series]
            written = writer.write_now(items, derive=node_exporter.derive)
        else:
            # The scrape failed: the server is not up for this turn. Not a
            # report from the server, so last_seen stays as it was.
            up = SeriesPoints(None, "up", (), [scraped.ts], [0.0])
            writer.write_now([(target.server_id, up)], mark_seen=False)
        ScrapeTarget.objects.filter(pk=target.pk).update(
            last_scrape=_moment(scraped.ts),
            last_duration=round(scraped.duration, 4),
            last_error=scraped.error[:2000],
            last_samples=scraped.samples,
            last_skipped=scraped.skipped,
        )
    return written


def scrape_due(now: float | None = None) -> dict[str, int]:
    """Scrape every due target once; returns counts for the logs."""
    now = time.time() if now is None else now
    targets = claim_due(now, settings.SCRAPE_MAX_TARGETS_PER_RUN)
    if not targets:
        return {"scraped": 0, "failed": 0, "written": 0}
    failed = written = 0
    for scraped in fetch_all(targets):
        if scraped.series is None:
            failed += 1
            log.info("scrape target %s failed: %s", scraped.target.pk, scraped.error)
        try:
            written += record(scraped)
        except DatabaseError as exc:
            # The others are still tried; a broken connection is replaced
            # before the next run (the scheduler and Celery close it).
            log.warning("scrape target %s: cannot store: %s", scraped.target.pk, exc)
    return {"scraped": len(targets), "failed": failed, "written": written}
