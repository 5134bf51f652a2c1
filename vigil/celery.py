"""The Celery app of production deployments: `celery -A vigil worker -B`.

Tasks are plain functions in each app's tasks.py; this module only wraps them
so that beat can schedule them and workers can run them. The embedded
scheduler of `vigil run` calls the same functions without a broker.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    ["vigil.servers", "vigil.scrape", "vigil.metrics", "vigil.alerts", "vigil.notify"],
    related_name="celery_tasks",
)
