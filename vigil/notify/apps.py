from __future__ import annotations

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "vigil.notify"
    label = "notify"
    verbose_name = "Notifications"
