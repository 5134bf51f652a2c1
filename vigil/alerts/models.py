"""Alert rules, the state of each (rule, series), silences and the
notifications waiting for delivery."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from vigil.alerts.evaluate import AGGREGATIONS, OPERATORS
from vigil.servers.models import Location, Server, Tag


class ServerGroup(models.Model):
    """A named set of servers that rules and silences can target."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    servers = models.ManyToManyField(Server, blank=True, related_name="groups")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def validate_aggregation(value: str) -> None:
    if value in AGGREGATIONS:
        return
    if re.fullmatch(r"p(\d{1,3})", value) and 0 <= int(value[1:]) <= 100:
        return
    raise ValidationError(f"{value!r}: use last, avg, min, max or a percentile p0-p100 (p95)")


def validate_matchers(value: str) -> None:
    from vigil.alerts.matching import parse_matchers

    try:
        parse_matchers(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


class Rule(models.Model):
    """What to watch, on which servers, and when to call it a problem."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", "threshold: the aggregated value crosses a limit"
        RATE = "rate", "rate of change per minute crosses a limit"
        FORECAST = "forecast", "forecast: the trend reaches the limit within the horizon"
        NO_DATA = "no_data", "no data: a series stops reporting"
        HOST_DOWN = "host_down", "host down: the server stops reporting"

    class Scope(models.TextChoices):
        ALL = "all", "all servers"
        LOCATION = "location", "a location"
        TAG = "tag", "servers with a tag"
        GROUP = "group", "a server group"
        SERVER = "server", "one server"

    name = models.CharField(max_length=200, unique=True)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default="warning")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.THRESHOLD)

    metric = models.CharField(
        max_length=200, blank=True, help_text="Canonical or native metric, e.g. cpu_usage_percent"
    )
    matchers = models.TextField(
        blank=True,
        validators=[validate_matchers],
        help_text="Label matchers, one per line: mountpoint=/, device!~loop.*",
    )
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(ServerGroup, null=True, blank=True, on_delete=models.CASCADE)
    server = models.ForeignKey(
        Server, null=True, blank=True, on_delete=models.CASCADE, related_name="own_rules"
    )

    aggregation = models.CharField(max_length=5, default="last", validators=[validate_aggregation])
    window_seconds = models.PositiveIntegerField(
        default=300, help_text="How far back the aggregation, rate or forecast looks"
    )
    operator = models.CharField(
        max_length=2, choices=[(op, op) for op in OPERATORS], default=">", blank=True
    )
    threshold = models.FloatField(null=True, blank=True)
    recovery_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Resolve only past this value (fire above 90, resolve below 80); "
        "empty: resolve as soon as the condition stops holding",
    )
    per_core = models.BooleanField(
        default=False, help_text="Divide the value by the server's CPU cores (load per core)"
    )
    forecast_seconds = models.PositiveIntegerField(
        default=86400, help_text="Forecast: fire when the limit is reached within this time"
    )
    no_data_seconds = models.PositiveIntegerField(
        default=600, help_text="No data: fire after this long without a sample"
    )
    for_seconds = models.PositiveIntegerField(
        default=0, help_text="The condition must hold this long before the alert fires"
    )
    for_evaluations = models.PositiveIntegerField(
        default=1, help_text="... and for this many evaluations in a row"
    )
    repeat_seconds = models.PositiveIntegerField(
        default=4 * 3600, help_text="Remind while still firing and not acknowledged; 0: never"
    )
    description = models.TextField(
        blank=True,
        help_text="Shown in the alert and its notifications. Placeholders: {server}, "
        "{location}, {metric}, {value}, {threshold}, {labels}, {label:mountpoint}, {predicted}",
    )
    is_default = models.BooleanField(default=False, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)
    last_evaluated = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == self.Kind.HOST_DOWN:
            self.metric = "up"
        elif not self.metric:
            errors["metric"] = "Name the metric this rule watches, e.g. cpu_usage_percent."
        if self.kind in (self.Kind.THRESHOLD, self.Kind.RATE, self.Kind.FORECAST):
            if self.threshold is None:
                errors["threshold"] = "This kind of rule needs a threshold."
            if not self.operator:
                errors["operator"] = "Choose >, >=, < or <=."
        if self.recovery_threshold is not None and self.threshold is not None:
            if self.operator in (">", ">=") and self.recovery_threshold > self.threshold:
                errors["recovery_threshold"] = "Must be at or below the threshold."
            if self.operator in ("<", "<=") and self.recovery_threshold < self.threshold:
                errors["recovery_threshold"] = "Must be at or above the threshold."
        wanted = {
            self.Scope.LOCATION: "location",
            self.Scope.TAG: "tag",
            self.Scope.GROUP: "group",
            self.Scope.SERVER: "server",
        }.get(self.scope)
        if wanted and getattr(self, f"{wanted}_id") is None:
            errors[wanted] = f"Choose the {wanted} this rule applies to."
        if self.kind in (self.Kind.RATE, self.Kind.FORECAST) and self.window_seconds < 60:
            errors["window_seconds"] = "A trend needs a window of at least 60 s."
        if errors:
            raise ValidationError(errors)


class Alert(models.Model):
    """The state of one rule on one series (or, for a location outage, on one
    location). Rows exist only while something happens: a series that never
    breached has none."""

    class State(models.IntegerChoices):
        OK = 0, "ok"
        PENDING = 1, "pending"
        FIRING = 2, "firing"
        GONE = 3, "gone"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="alerts")
    series = models.ForeignKey(
        "metrics.Series", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    server = models.ForeignKey(
        Server, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    location = models.ForeignKey(
        Location,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
        help_text="Set on a location outage: one alert for the servers down there",
    )
    labels = models.JSONField(default=dict, blank=True)
    state = models.SmallIntegerField(choices=State.choices, default=State.OK)
    since = models.DateTimeField(null=True, blank=True, help_text="When the breach began")
    streak = models.PositiveIntegerField(default=0)
    value = models.FloatField(null=True, blank=True)
    predicted_at = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    # Whether the current firing was told to anyone: a silenced or suppressed
    # alert is not, and is told once the silence ends while it still fires.
    notified_at = models.DateTimeField(null=True, blank=True)
    # A notification this alert still owes: "resolved" or "gone" once people
    # were told it fired, "flapping" when it starts to flap. Sent by dispatch.
    owes = models.CharField(max_length=12, blank=True)
    silenced = models.BooleanField(default=False)
    suppressed = models.CharField(
        max_length=100, blank=True, help_text="Why no one is told: its server or location is down"
    )
    # Icinga-style flap detection: one bit per evaluation, 1 = firing.
    history = models.BigIntegerField(default=0)
    flapping = models.BooleanField(default=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    ack_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-changed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "series"],
                condition=models.Q(series__isnull=False),
                name="alert_one_per_rule_series",
            ),
            models.UniqueConstraint(
                fields=["rule", "location"],
                condition=models.Q(location__isnull=False),
                name="alert_one_per_rule_location",
            ),
        ]
        indexes = [models.Index(fields=["state", "rule"], name="alert_state_rule")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.subject}"

    @property
    def subject(self) -> str:
        if self.location_id and not self.series_id:
            return f"location {self.location}"
        text = str(self.server) if self.server_id else "?"
        if self.labels:
            text += " " + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return text

    @property
    def is_firing(self) -> bool:
        return self.state == self.State.FIRING

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class AlertEvent(models.Model):
    """A change of an alert, kept for the alerts page's history."""

    class Kind(models.TextChoices):
        PENDING = "pending", "pending"
        FIRING = "firing", "firing"
        RESOLVED = "resolved", "resolved"
        GONE = "gone", "gone"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        FLAPPING = "flapping", "started flapping"
        SETTLED = "settled", "stopped flapping"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="events")
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.CASCADE)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at"], name="alert_event_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.alert_id}"


class Silence(models.Model):
    """Mutes the alerts it matches: they still change state, but no one is told.

    Matches by server, location, tag, rule and label matchers (all that are
    set must match); active between starts_at and ends_at, optionally only in
    a weekly window, or until the alert it was made for resolves."""

    comment = models.CharField(max_length=500, blank=True)
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.CASCADE)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.CASCADE)
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.CASCADE)
    matchers = models.TextField(blank=True, validators=[validate_matchers])
    until_resolved = models.ForeignKey(
        Alert,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="silences",
        help_text="Mute this alert until it resolves",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until resolved")
    weekdays = models.CharField(
        max_length=20,
        blank=True,
        help_text="Recurring weekly window: days as 0-6 (Monday is 0), e.g. 5,6",
    )
    window_start = models.TimeField(null=True, blank=True, help_text="Start of the weekly window")
    window_minutes = models.PositiveIntegerField(default=0, help_text="Length of the weekly window")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.comment or f"silence {self.pk}"

    def clean(self) -> None:
        if self.ends_at is None and self.until_resolved_id is None:
            raise ValidationError({"ends_at": "Set an end, or mute until the alert resolves."})
        if self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must be after the start."})
        if self.weekdays:
            days = self.weekday_set()
            if not days or not days <= set(range(7)):
                raise ValidationError({"weekdays": "Days are 0 (Monday) to 6 (Sunday): 5,6"})
            if self.window_start is None or not 0 < self.window_minutes <= 7 * 1440:
                raise ValidationError(
                    {"window_minutes": "A weekly window needs a start time and a length."}
                )

    def weekday_set(self) -> set[int]:
        try:
            return {int(d) for d in self.weekdays.replace(" ", "").split(",") if d}
        except ValueError:
            return set()

    def is_active(self, now: datetime) -> bool:
        if now < self.starts_at or (self.ends_at is not None and now >= self.ends_at):
            return False
        if not self.weekdays:
            return True
        local = timezone.localtime(now)
        length = timedelta(minutes=self.window_minutes)
        # A window that began on an earlier day may still be open (Friday 22:00 + 10 h).
        for back in range(8):
            day = local.date() - timedelta(days=back)
            if day.weekday() not in self.weekday_set():
                continue
            opened = datetime.combine(day, self.window_start, tzinfo=local.tzinfo)
            if opened <= local < opened + length:
                return True
        return False


class Notification(models.Model):
    """A message to send, with grouping done: one firing notification lists
    every server of one rule that fired together. Delivery reads this queue."""

    class Kind(models.TextChoices):
        FIRING = "firing", "firing"
        RESOLVED = "resolved", "resolved"
        REPEAT = "repeat", "still firing"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        FLAPPING = "flapping", "flapping"
        GONE = "gone", "gone"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="notifications")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL)
    alerts = models.ManyToManyField(Alert, related_name="notifications")
    title = models.CharField(max_length=500)
    # One entry per alert: server, labels, value, description, times and the
    # alert's stable key (PagerDuty dedup_key, Opsgenie alias).
    items = models.JSONField(default=list)
    created = models.DateTimeField(default=timezone.now)
    # Set once its deliveries exist (vigil.notify routes it), and once every
    # delivery has ended, sent or failed.
    routed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["delivered_at", "created"], name="notification_queue"),
            models.Index(fields=["routed_at"], name="notification_unrouted"),
        ]

    def __str__(self) -> str:
        return self.title
