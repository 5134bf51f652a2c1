"""The embedded scheduler of `vigil run`: Celery beat's job without a broker.

It runs the same plain task functions that Celery workers run in production,
one at a time in one thread, so SQLite sees a single writer for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connection

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    every: float
    func: Callable[[], object]
    next_run: float = 0.0


class Scheduler:
    def __init__(self, jobs: list[Job], name: str = "vigil-scheduler") -> None:
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_due(self, now: float) -> None:
        for job in self.jobs:
            if now < job.next_run:
                continue
            job.next_run = now + job.every
            started = time.monotonic()
            try:
                close_old_connections()
                result = job.func()
                log.debug("%s: %s in %.0f ms", job.name, result, (time.monotonic() - started) * 1e3)
            except Exception:
                log.exception("scheduled task %s failed; it runs again in %ss", job.name, job.every)
                connection.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due(time.monotonic())
            wait = min(job.next_run for job in self.jobs) - time.monotonic()
            self._stop.wait(max(0.2, wait))
        connection.close()


def default_jobs() -> list[Job]:
    """The periodic tasks, as CELERY_BEAT_SCHEDULE lists them for Celery."""
    from django.conf import settings

    from vigil.alerts import tasks as alert_tasks
    from vigil.metrics import tasks as metrics_tasks
    from vigil.notify import tasks as notify_tasks
    from vigil.scrape import tasks as scrape_tasks
    from vigil.servers import tasks as server_tasks

    return [
        Job("update_up", settings.UP_INTERVAL_SECONDS, server_tasks.update_up),
        Job("scrape_due", settings.SCRAPE_TICK_SECONDS, scrape_tasks.scrape_due),
        Job(
            "evaluate_alerts",
            settings.ALERT_EVALUATION_INTERVAL_SECONDS,
            alert_tasks.evaluate_alerts,
        ),
        Job("watchdog", settings.WATCHDOG_INTERVAL_SECONDS, notify_tasks.watchdog_ping),
        # SQLite only (a no-op elsewhere); Celery deployments run PostgreSQL.
        Job("checkpoint_wal", 1.0, metrics_tasks.checkpoint_wal),
    ]


def history_jobs() -> list[Job]:
    """History maintenance, in a scheduler of its own so that a long compaction
    never delays `up` samples or scrapes."""
    from django.conf import settings

    from vigil.metrics import tasks as metrics_tasks

    if settings.HISTORY_INTERVAL_SECONDS <= 0:
        return []  # off: benchmarks of ingest or queries alone
    return [
        Job("maintain_history", settings.HISTORY_INTERVAL_SECONDS, metrics_tasks.maintain_history)
    ]


def notify_jobs() -> list[Job]:
    """Notification delivery, in a scheduler of its own: a receiver that
    takes its full timeout to answer must not delay `up` samples, scrapes
    or alert evaluation."""
    from django.conf import settings

    from vigil.notify import tasks as notify_tasks

    return [
        Job(
            "deliver_notifications",
            settings.NOTIFY_TICK_SECONDS,
            notify_tasks.deliver_notifications,
        )
    ]
