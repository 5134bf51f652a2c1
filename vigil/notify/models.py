"""Where notifications go (channels and routes) and every attempt to send
them (deliveries and their attempts)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from vigil.alerts.models import Notification, Rule, Severity
from vigil.servers.models import Location, Tag


class Channel(models.Model):
    """One destination: an e-mail list, a PagerDuty service, a Slack channel...

    `config` holds the settings that may be shown; `secrets` holds keys,
    tokens and passwords, which are written but never shown back (the UI,
    the admin and the API say only whether each one is set)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS (Twilio API)"
        PAGERDUTY = "pagerduty", "PagerDuty"
        OPSGENIE = "opsgenie", "Opsgenie"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True, editable=False)
    is_fallback = models.BooleanField(
        default=False,
        help_text="Receives what finally failed on another channel, so that no page vanishes",
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Route(models.Model):
    """Which channels hear about which notifications.

    Every enabled route whose conditions all match a notification sends it to
    its channels; when none matches, the default routes do. A route can
    escalate: if a firing alert is still unacknowledged after N minutes, the
    escalation channels are notified too."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Used when no other route matches")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.CASCADE)
    severity = models.CharField(
        max_length=10, choices=Severity.choices, blank=True, help_text="Empty: any severity"
    )
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.CASCADE)
    channels = models.ManyToManyField(Channel, related_name="routes", blank=True)
    escalate_after_minutes = models.PositiveIntegerField(default=0, help_text="0: never escalate")
    escalate_to = models.ManyToManyField(Channel, related_name="escalations", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One notification to one channel: claimed by one worker at a time,
    retried with backoff, failed for good after VIGIL_NOTIFY_MAX_ATTEMPTS."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "scheduled (escalation)"
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        RETRY = "retry", "waiting to retry"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    class Purpose(models.TextChoices):
        ROUTE = "route", "route"
        ESCALATION = "escalation", "escalation"
        FALLBACK = "fallback", "fallback"
        TEST = "test", "test"

    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.ROUTE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Sent with every attempt (a webhook's delivery id header), so a receiver
    # can drop the copy that a timed-out attempt may have delivered.
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    # Parts that already went out (the SMS recipients reached), skipped on
    # retry so that no one gets a page twice.
    progress = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel", "purpose"],
                condition=models.Q(notification__isnull=False),
                name="delivery_once_per_channel",
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.notification_id} → {self.channel_id} ({self.status})"


class Attempt(models.Model):
    """One try at a delivery: the delivery log."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True, help_text="HTTP status or SMTP code")
    answer = models.TextField(blank=True, help_text="The receiver's answer, shortened")
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=10)  # sent, retry, failed

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
