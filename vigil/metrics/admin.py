from __future__ import annotations

from django.contrib import admin

from vigil.metrics.models import Series


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
