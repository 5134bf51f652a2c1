from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "vigil.metrics"
    label = "metrics"
