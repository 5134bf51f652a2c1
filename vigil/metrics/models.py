"""Series and samples: the storage every agent protocol writes into.

A series is (server, metric, labels). A sample is keyed by (series, ts), so
writing the same sample twice stores it once and every retry is safe. The
sample table is created by hand in the migration: WITHOUT ROWID on SQLite (the
key is the table, no second b-tree), no foreign key constraint anywhere (it
would cost a lookup per row on the hottest path).
"""

from __future__ import annotations

from django.db import models

from vigil.servers.models import Server


def labels_key(labels: dict[str, str] | tuple[tuple[str, str], ...]) -> str:
    """The canonical text of a label set, used in the unique key of a series."""
    items = labels.items() if isinstance(labels, dict) else labels
    return ",".join(f"{k}={v}" for k, v in sorted(items))


class Series(models.Model):
    # 32-bit ids keep the sample key small: 4 bytes instead of 8 on every row.
    id = models.AutoField(primary_key=True)
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="series")
    metric = models.CharField(max_length=200)
    labels = models.JSONField(default=dict, blank=True)
    labels_key = models.CharField(max_length=1000, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    # The newest sample, kept by the writer so that lists of servers show
    # current values without reading the sample table.
    last_ts = models.BigIntegerField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    # The previous raw reading of a counter series, from which the next
    # request's first rate is computed (any web node may receive it).
    counter_ts = models.BigIntegerField(null=True, blank=True, editable=False)
    counter_value = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["server", "metric", "labels_key"], name="series_unique_identity"
            )
        ]
        indexes = [models.Index(fields=["metric", "server"], name="series_metric_server")]

    def __str__(self) -> str:
        label_text = "{" + self.labels_key + "}" if self.labels_key else ""
        return f"{self.server_id}:{self.metric}{label_text}"

    def save(self, *args, **kwargs):
        self.labels_key = labels_key(self.labels or {})
        super().save(*args, **kwargs)


class Sample(models.Model):
    """One raw sample. `ts` is integer unix seconds."""

    pk = models.CompositePrimaryKey("series_id", "ts")
    # CASCADE runs as one fast DELETE ... WHERE series_id IN (...) in Django.
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    ts = models.BigIntegerField()
    value = models.FloatField()

    def __str__(self) -> str:
        return f"{self.series_id}@{self.ts}={self.value}"
