from __future__ import annotations

from django.contrib import admin

from vigil.metrics.models import Retention, Series


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    """Series are created by ingest; the admin shows them and can delete them."""

    list_display = ["server", "metric", "labels_key", "last_value", "last_ts"]
    list_filter = ["metric"]
    search_fields = ["server__name", "metric", "labels_key"]
    list_select_related = ["server"]
    readonly_fields = [
        "server",
        "metric",
        "labels",
        "labels_key",
        "created",
        "last_ts",
        "last_value",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Retention)
class RetentionAdmin(admin.ModelAdmin):
    """One row: how long each tier is kept. Until it exists, the settings' defaults apply."""

    list_display = ["raw_days", "rollup_5m_days", "rollup_1h_days", "updated"]

    def has_add_permission(self, request) -> bool:
        return not Retention.objects.exists()

    def get_changeform_initial_data(self, request) -> dict:
        defaults = Retention.current()
        return {
            "raw_days": defaults.raw_days,
            "rollup_5m_days": defaults.rollup_5m_days,
            "rollup_1h_days": defaults.rollup_1h_days,
        }
