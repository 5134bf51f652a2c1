from __future__ import annotations

from django.apps import AppConfig


class ScrapeConfig(AppConfig):
    name = "vigil.scrape"
    label = "scrape"
    verbose_name = "Prometheus scrapes"
