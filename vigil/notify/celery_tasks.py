"""Celery wrappers: a beat task hands every due delivery to its own task."""

from __future__ import annotations

from celery import shared_task

from vigil.notify import delivery, tasks


@shared_task(name="vigil.notify.deliver")
def deliver(pk: int) -> str:
    return delivery.deliver(pk)


@shared_task(name="vigil.notify.deliver_due")
def deliver_due() -> dict[str, int]:
    return delivery.deliver_due(send=lambda pk: deliver.delay(pk))


@shared_task(name="vigil.notify.watchdog")
def watchdog() -> str:
    return tasks.watchdog_ping()
