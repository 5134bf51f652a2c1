from __future__ import annotations

from django import forms
from django.contrib import admin

from vigil.scrape.models import ScrapeTarget


class ScrapeTargetForm(forms.ModelForm):
    """Shows the URL with its password as ***; a URL left unchanged keeps the password."""

    class Meta:
        model = ScrapeTarget
        fields = ["server", "url", "interval", "timeout", "enabled", "next_due"]
        help_texts = {
            "url": "Basic auth goes in the URL (https://user:password@host:9100/metrics); "
            "the password is shown as *** and kept while the URL is left as shown."
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["url"] = self.instance.display_url

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if self.instance.pk and url == self.instance.display_url:
            return self.instance.url
        return url


@admin.register(ScrapeTarget)
class ScrapeTargetAdmin(admin.ModelAdmin):
    form = ScrapeTargetForm
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
