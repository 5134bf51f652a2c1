"""Celery wrappers of the plain task functions (the scheduler calls them directly)."""

from __future__ import annotations

from celery import shared_task

from vigil.servers import tasks


@shared_task(name="vigil.servers.update_up")
def update_up(now: float | None = None) -> dict[str, int]:
    return tasks.update_up(now)
