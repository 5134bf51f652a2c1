"""Vigil's own metrics: what `GET /metrics` exposes for Prometheus to scrape."""

from __future__ import annotations

from django.db.models import Count

from vigil.ingest import writer
from vigil.lib import stats
from vigil.metrics.models import Series
from vigil.servers.models import Server

HELP = {
    "vigil_servers": ("gauge", "Servers by status."),
    "vigil_series": ("gauge", "Series stored."),
    "vigil_alerts": ("gauge", "Alerts by state (pending, firing, gone)."),
    "vigil_alert_rules_failing": ("gauge", "Enabled rules whose last evaluation failed."),
    "vigil_notifications_queued": ("gauge", "Notifications not yet delivered."),
    "vigil_notify_deliveries": (
        "gauge",
        "Deliveries of notifications to channels by status (test sends not counted).",
    ),
    "vigil_ingest_requests_total": ("counter", "Ingest requests answered by this process."),
    "vigil_ingest_samples_written_total": ("counter", "Samples committed by this process."),
    "vigil_ingest_samples_rejected_total": ("counter", "Samples rejected as invalid."),
    "vigil_writer_groups_committed_total": ("counter", "Group commits of the writer thread."),
    "vigil_writer_batches_committed_total": ("counter", "Batches committed by the writer thread."),
}


def collect() -> list[tuple[str, dict[str, str], float]]:
    samples: list[tuple[str, dict[str, str], float]] = []
    counts = dict(Server.objects.values_list("status").annotate(n=Count("pk")))
    for status in Server.Status.values:
        samples.append(("vigil_servers", {"status": status}, counts.get(status, 0)))
    samples.append(("vigil_series", {}, Series.objects.count()))
    samples.extend(_alert_samples())
    samples.extend(_delivery_samples())
    for (name, labels), value in sorted(stats.snapshot().items()):
        samples.append((name, dict(labels), value))
    committer = writer.committer()
    if committer is not None:
        samples.append(("vigil_writer_groups_committed_total", {}, committer.groups_committed))
        samples.append(("vigil_writer_batches_committed_total", {}, committer.batches_committed))
    return samples


def _alert_samples() -> list[tuple[str, dict[str, str], float]]:
    from vigil.alerts.models import Alert, Notification, Rule

    states = dict(
        Alert.objects.exclude(state=Alert.State.OK).values_list("state").annotate(n=Count("pk"))
    )
    out = [
        ("vigil_alerts", {"state": label}, states.get(value, 0))
        for value, label in Alert.State.choices
        if value != Alert.State.OK
    ]
    failing = Rule.objects.filter(enabled=True).exclude(last_error="").count()
    out.append(("vigil_alert_rules_failing", {}, failing))
    queued = Notification.objects.filter(delivered_at__isnull=True).count()
    out.append(("vigil_notifications_queued", {}, queued))
    return out


def _delivery_samples() -> list[tuple[str, dict[str, str], float]]:
    from vigil.notify.models import Delivery

    counts = dict(
        Delivery.objects.exclude(purpose=Delivery.Purpose.TEST)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return [
        ("vigil_notify_deliveries", {"status": status}, counts.get(status, 0))
        for status in Delivery.Status.values
    ]


def render() -> str:
    return stats.render(collect(), HELP)
