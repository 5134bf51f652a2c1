from __future__ import annotations

from django.contrib import admin

from vigil.scrape.models import ScrapeTarget


@admin.register(ScrapeTarget)
class ScrapeTargetAdmin(admin.ModelAdmin):
    list_display = [
        "server",
        "display_url",
        "interval",
        "enabled",
        "state",
        "last_scrape",
        "last_duration",
        "last_samples",
        "last_error",
    ]
    list_filter = ["enabled"]
    list_select_related = ["server"]
    search_fields = ["url", "server__name"]
    autocomplete_fields = ["server"]
    fields = [
        "server",
        "url",
        "interval",
        "timeout",
        "enabled",
        "next_due",
        "last_scrape",
        "last_duration",
        "last_samples",
        "last_skipped",
        "last_error",
    ]
    readonly_fields = [
        "last_scrape",
        "last_duration",
        "last_samples",
        "last_skipped",
        "last_error",
    ]
