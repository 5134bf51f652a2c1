"""Celery wrapper of the plain scrape task (the embedded scheduler calls it directly)."""

from __future__ import annotations

from celery import shared_task

from vigil.scrape import tasks


@shared_task(name="vigil.scrape.scrape_due")
def scrape_due(now: float | None = None) -> dict[str, int]:
    return tasks.scrape_due(now)
