"""Forms of the alert pages: the rule editor and the silence editor. The
models' clean() does the validation; these forms only turn choices such as
"for 4 hours" into the fields the models store."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from vigil.alerts.models import Alert, Rule, Silence

RULE_GROUPS = [
    ("Rule", ["name", "enabled", "severity", "kind", "description"]),
    ("What", ["metric", "matchers", "aggregation", "window_seconds", "per_core"]),
    ("Where", ["scope", "location", "tag", "group", "server"]),
    (
        "When",
        [
            "operator",
            "threshold",
            "recovery_threshold",
            "forecast_seconds",
            "no_data_seconds",
            "for_seconds",
            "for_evaluations",
            "repeat_seconds",
        ],
    ),
]
RULE_FIELDS = [name for _, names in RULE_GROUPS for name in names]


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = RULE_FIELDS
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "matchers": forms.Textarea(attrs={"rows": 2, "placeholder": "mountpoint=/"}),
            "aggregation": forms.TextInput(attrs={"list": "aggregations", "size": 8}),
        }

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The bound fields as the editor lays them out: What, Where, When."""
        return [
            (title, [self[name] for name in names if name in self.fields])
            for title, names in RULE_GROUPS
        ]


class BacktestForm(RuleForm):
    """The rule editor's fields without the name: an unsaved rule, or a copy
    of an existing one, is backtested without being unique or named yet."""

    class Meta(RuleForm.Meta):
        fields = [name for name in RULE_FIELDS if name != "name"]


DURATIONS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
DURATION_CHOICES = [
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("1d", "1 day"),
    ("custom", "until a set time"),
]
UNTIL_RESOLVED = ("resolved", "until this alert resolves")
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=LOCAL_INPUT)


class SilenceForm(forms.ModelForm):
    """A new silence. `duration` sets ends_at; "until this alert resolves"
    (offered when the form comes from an alert) sets until_resolved and
    leaves ends_at empty; the weekly window is optional."""

    duration = forms.ChoiceField(
        choices=DURATION_CHOICES, initial="1h", widget=forms.RadioSelect, label="Mute"
    )
    starts_at = forms.DateTimeField(
        required=False, widget=LocalDateTimeInput(), label="Starts", help_text="Empty: now"
    )
    ends_at = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        label="Ends",
        help_text="With “until a set time”",
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only on",
        help_text="A weekly window: mute only on these days, from the start time, "
        "for the minutes below",
    )
    until_resolved = forms.ModelChoiceField(
        queryset=Alert.objects.all(), required=False, widget=forms.HiddenInput
    )

    class Meta:
        model = Silence
        fields = [
            "comment",
            "server",
            "location",
            "tag",
            "rule",
            "matchers",
            "until_resolved",
            "starts_at",
            "ends_at",
            "weekdays",
            "window_start",
            "window_minutes",
        ]
        widgets = {
            "comment": forms.TextInput(attrs={"size": 60, "placeholder": "Why: disk swap on db-1"}),
            "matchers": forms.Textarea(attrs={"rows": 2, "placeholder": "mountpoint=/data"}),
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        labels = {"window_start": "Window starts at", "window_minutes": "Window minutes"}

    def __init__(self, *args, alert: Alert | None = None, now: datetime | None = None, **kw):
        super().__init__(*args, **kw)
        self.now = now or timezone.now()
        self.alert = alert
        self.fields["comment"].required = True
        self.fields["window_minutes"].required = False
        if alert is not None:
            self.fields["duration"].choices = [UNTIL_RESOLVED, *DURATION_CHOICES]
            self.fields["duration"].initial = UNTIL_RESOLVED[0]
            self.fields["until_resolved"].initial = alert.pk

    def clean_weekdays(self) -> str:
        return ",".join(str(d) for d in sorted(set(self.cleaned_data["weekdays"])))

    def clean_window_minutes(self) -> int:
        return self.cleaned_data.get("window_minutes") or 0

    def clean_starts_at(self) -> datetime:
        return self.cleaned_data.get("starts_at") or self.now

    def clean(self) -> dict:
        """Turn the duration into ends_at / until_resolved; the model's clean()
        then checks the result."""
        data = super().clean()
        duration = data.get("duration")
        starts = data.get("starts_at") or self.now
        if duration == UNTIL_RESOLVED[0]:
            alert = data.get("until_resolved")
            if alert is None or alert.state not in (Alert.State.PENDING, Alert.State.FIRING):
                self.add_error("duration", "That alert is no longer pending or firing.")
            data["ends_at"] = None
        else:
            data["until_resolved"] = None
            if duration in DURATIONS:
                data["ends_at"] = starts + DURATIONS[duration]
            elif duration == "custom" and data.get("ends_at") is None:
                self.add_error("ends_at", "Set the time the silence ends.")
        targets = ("server", "location", "tag", "rule", "matchers", "until_resolved")
        if not any(data.get(name) for name in targets) and not self.has_error("matchers"):
            # Alertmanager refuses an empty silence too: it would mute everything.
            raise forms.ValidationError(
                "Choose what to mute: a server, location, tag, rule or label matchers."
            )
        return data
