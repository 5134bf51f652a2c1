"""Series and their history: the storage every agent protocol writes into.

A series is (server, metric, labels). Its history lives in three tiers:

- raw samples, keyed by (series, ts) so that writing the same sample twice
  stores it once: recent ones as rows of the hot table (`Sample`), older ones
  compacted into compressed blocks, one per series and time window (`Block`);
- 5-minute and 1-hour rollups (`Rollup5m`, `Rollup1h`): min, max, sum, count
  and last of each bucket, computed from the raw tier.

The tables of the tiers are created by hand in the migration: WITHOUT ROWID on
SQLite (the key is the table, no second b-tree), partitioned by time on
PostgreSQL for the hot table, and no foreign key constraint anywhere (it would
cost a lookup per row on the hottest path). Deleting a series deletes its
history through `delete_history`.
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


class Block(models.Model):
    """The raw samples of one series in one time window, compressed (see codec.py)."""

    pk = models.CompositePrimaryKey("series_id", "start")
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    # The window [start, start + BLOCK_SECONDS) that the block covers.
    start = models.BigIntegerField()
    first_ts = models.BigIntegerField()
    last_ts = models.BigIntegerField()
    count = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        managed = False
        db_table = "metrics_block"

    def __str__(self) -> str:
        return f"{self.series_id}@{self.start}: {self.count} samples"


class Rollup(models.Model):
    """One bucket of a rollup tier: `ts` is the start of the bucket."""

    pk = models.CompositePrimaryKey("series_id", "ts")
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    ts = models.BigIntegerField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    count = models.IntegerField()
    last = models.FloatField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.series_id}@{self.ts}: avg {self.avg}"

    @property
    def avg(self) -> float:
        return self.sum / self.count


class Rollup5m(Rollup):  # noqa: DJ008 (inherited)
    class Meta:
        managed = False
        db_table = "metrics_rollup5m"


class Rollup1h(Rollup):  # noqa: DJ008 (inherited)
    class Meta:
        managed = False
        db_table = "metrics_rollup1h"


class HistoryState(models.Model):
    """How far an incremental history job got (rollup and compaction watermarks):
    the next run starts there, so a crash only redoes the unfinished bucket."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Late(models.Model):
    """A mark left by ingest for samples that arrived late: their rollup bucket
    (kind ROLLUP, start of the hour) or their block window (kind COMPACT) must be
    computed again from the raw tier."""

    ROLLUP = 1
    COMPACT = 2

    pk = models.CompositePrimaryKey("kind", "series_id", "start")
    kind = models.SmallIntegerField()
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    start = models.BigIntegerField()

    class Meta:
        db_table = "metrics_late"

    def __str__(self) -> str:
        return f"late {self.kind} {self.series_id}@{self.start}"


class Retention(models.Model):
    """How long each tier is kept. One row, edited in the admin; without it the
    defaults of the settings apply (VIGIL_RETENTION_*_DAYS)."""

    raw_days = models.PositiveIntegerField("raw samples (days)")
    rollup_5m_days = models.PositiveIntegerField("5-minute rollups (days)")
    rollup_1h_days = models.PositiveIntegerField("1-hour rollups (days)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "retention"
        verbose_name_plural = "retention"

    def __str__(self) -> str:
        return f"raw {self.raw_days} d, 5 min {self.rollup_5m_days} d, 1 h {self.rollup_1h_days} d"

    @classmethod
    def current(cls) -> Retention:
        """The row of the admin, else an unsaved one with the settings' defaults."""
        from django.conf import settings

        row = cls.objects.order_by("pk").first()
        if row is not None:
            return row
        return cls(
            raw_days=settings.RETENTION_RAW_DAYS,
            rollup_5m_days=settings.RETENTION_5M_DAYS,
            rollup_1h_days=settings.RETENTION_1H_DAYS,
        )
