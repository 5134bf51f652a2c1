"""Exporters that Vigil scrapes (Prometheus node_exporter and the like)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone

from vigil.servers.models import Server


class ScrapeTarget(models.Model):
    """An exporter URL scraped every `interval` seconds for one server.

    `next_due` is also the claim: a worker scrapes a target only after it has
    moved `next_due` forward with a conditional update, so two workers never
    scrape the same target for the same turn.
    """

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="scrape_targets")
    url = models.CharField(
        "URL",
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="e.g. http://10.0.0.5:9100/metrics (user:pass@ for basic auth)",
    )
    interval = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text="seconds between scrapes",
    )
    timeout = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(60)],
        help_text="seconds for the whole scrape (at most the interval)",
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    next_due = models.DateTimeField(default=timezone.now, db_index=True)
    last_scrape = models.DateTimeField(null=True, blank=True, editable=False)
    last_duration = models.FloatField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_samples = models.PositiveIntegerField(default=0, editable=False)
    last_skipped = models.PositiveIntegerField(
        default=0, editable=False, help_text="samples not stored: NaN/±Inf values and bad lines"
    )

    class Meta:
        ordering = ["server__name", "url"]
        constraints = [
            models.UniqueConstraint(fields=["server", "url"], name="scrape_target_unique_url")
        ]

    def __str__(self) -> str:
        return f"{self.server} ← {self.display_url}"

    def clean(self) -> None:
        if self.timeout is not None and self.interval and self.timeout > self.interval:
            raise ValidationError({"timeout": "The timeout must not be longer than the interval."})

    @property
    def display_url(self) -> str:
        """The URL without its password, for pages and logs."""
        scheme, sep, rest = self.url.partition("://")
        userinfo, at, hostpart = rest.partition("@")
        if at and "/" not in userinfo:
            user = userinfo.split(":", 1)[0]
            return f"{scheme}{sep}{user}:***@{hostpart}"
        return self.url

    @property
    def state(self) -> str:
        """never, ok, partial (some lines rejected) or failing."""
        if self.last_scrape is None:
            return "never"
        if not self.last_error:
            return "ok"
        return "partial" if self.last_error.startswith("partial:") else "failing"
