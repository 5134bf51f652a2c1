"""Celery wrapper of the alert engine's task (the scheduler calls it directly)."""

from __future__ import annotations

from celery import shared_task

from vigil.alerts import tasks


@shared_task(name="vigil.alerts.evaluate_alerts")
def evaluate_alerts(now: float | None = None) -> dict[str, int]:
    return tasks.evaluate_alerts(now)
