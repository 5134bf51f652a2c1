"""Celery wrappers of the plain task functions (the scheduler calls them directly)."""

from __future__ import annotations

from celery import shared_task

from vigil.metrics import tasks


@shared_task(name="vigil.metrics.maintain_history")
def maintain_history(now: float | None = None) -> dict[str, object]:
    return tasks.maintain_history(now)
