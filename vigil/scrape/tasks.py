"""Periodic scrape task, a plain function run by the embedded scheduler and Celery."""

from __future__ import annotations

from vigil.scrape import scrape


def scrape_due(now: float | None = None) -> dict[str, int]:
    """Scrape the targets that are due (safe to run in several workers at once)."""
    return scrape.scrape_due(now)
