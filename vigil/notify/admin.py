"""The notification models in the Django admin. A channel's settings are
edited as JSON and its secrets as write-only password fields, one per
Transport.secret_fields: never rendered back, empty keeps the value, a
"clear" box removes it. Deliveries and attempts are a log: read-only."""

from __future__ import annotations

import orjson
from django import forms
from django.contrib import admin

from vigil.notify import configure
from vigil.notify.models import Attempt, Channel, Delivery, Route

WRITE_ONLY = "secret__"
CLEAR = "clear__"


class ChannelAdminForm(forms.ModelForm):
    """The channel with one password field per secret of its kind. The kind
    of a new channel comes from the form's data (the admin has no step in
    between), so all kinds' secrets are offered and the others ignored."""

    kind = forms.ChoiceField(choices=())

    class Meta:
        model = Channel
        fields = ["name", "kind", "enabled", "is_fallback", "config"]
        widgets = {"config": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = configure.kinds()
        if self.instance.pk and self.instance.kind not in dict(choices):
            choices.append((self.instance.kind, self.instance.kind))
        self.fields["kind"].choices = choices
        self.fields[
            "config"
        ].help_text = "A JSON object; the settings each kind takes are listed in docs/channels.md."
        if self.instance.pk:
            self.fields["kind"].disabled = True
            kinds_of = {n: [self.instance.kind] for n in self._names(self.instance.kind)}
        else:
            kinds_of = {}
            for kind, _ in choices:
                for name in self._names(kind):
                    kinds_of.setdefault(name, []).append(kind)
        state = configure.secret_state(self.instance.kind, self.instance.secrets)
        self.secret_names: list[str] = list(kinds_of)
        for name, kinds in kinds_of.items():
            label, hint = configure.secret_text(kinds[0], name)
            if self.instance.pk:
                label = f"{label} ({state.get(name, configure.NOT_SET)})"
            else:
                label = f"{' / '.join(configure.label_of(k) for k in kinds)}: {label.lower()}"
            self.fields[WRITE_ONLY + name] = forms.CharField(
                label=label,
                required=False,
                strip=False,
                help_text=hint or "Write-only: leave empty to keep the stored value.",
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
            )
            if self.instance.pk:
                self.fields[CLEAR + name] = forms.BooleanField(
                    label=f"Clear {name.replace('_', ' ')}", required=False
                )

    def _names(self, kind: str) -> tuple[str, ...]:
        return configure.secret_fields(kind, self.instance.secrets)

    def clean_config(self) -> dict:
        config = self.cleaned_data.get("config")
        if not isinstance(config, dict):
            raise forms.ValidationError('Give a JSON object: {"name": value, …}.')
        if len(orjson.dumps(config)) > 64 * 1024:
            raise forms.ValidationError("The settings are larger than 64 KiB.")
        return config

    def clean(self) -> dict:
        data = super().clean()
        kind = self.instance.kind if self.instance.pk else data.get("kind")
        if not kind or "config" not in data:
            return data
        own = set(configure.secret_fields(kind, self.instance.secrets))
        given: dict[str, str | None] = {}
        for name in self.secret_names:
            value = data.get(WRITE_ONLY + name) or ""
            if name not in own:
                continue  # a secret of another kind, on the add form
            if data.get(CLEAR + name):
                given[name] = None
            elif value:
                given[name] = value
        secrets, _ = configure.merge_secrets(kind, self.instance.secrets, given)
        for key, message in configure.validate(kind, data["config"], secrets).items():
            target = configure.error_target(kind, key, data["config"], secrets)
            if WRITE_ONLY + key in self.fields and target == "secrets":
                self.add_error(WRITE_ONLY + key, message)
            elif key == "kind":
                self.add_error("kind", message)
            else:
                self.add_error("config", f"{key}: {message}")
        data["secrets"] = secrets
        return data

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        if not channel.pk:
            channel.kind = self.cleaned_data["kind"]
        channel.secrets = self.cleaned_data["secrets"]
        if commit:
            channel.save()
        return channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = [
        "name",
        "kind",
        "enabled",
        "is_fallback",
        "secrets_state",
        "last_success_at",
        "last_error_at",
        "shown_error",
    ]
    list_filter = ["kind", "enabled", "is_fallback"]
    search_fields = ["name"]
    readonly_fields = ["secrets_state", "last_success_at", "last_error_at", "shown_error"]

    def get_fieldsets(self, request, obj=None):
        form = self._form(request, obj)
        secrets = [
            n
            for name in form.secret_names
            for n in (WRITE_ONLY + name, CLEAR + name)
            if n in form.fields
        ]
        out = [
            (None, {"fields": ["name", "kind", "enabled", "is_fallback", "config"]}),
            ("Secrets (write-only)", {"fields": secrets}),
        ]
        if obj is not None:
            out.append(
                (
                    "Status",
                    {
                        "fields": [
                            "secrets_state",
                            "last_success_at",
                            "last_error_at",
                            "shown_error",
                        ]
                    },
                )
            )
        return out

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The secret fields are made per channel in the form's __init__, so
        # the model form is built from the model fields alone.
        kwargs["fields"] = ChannelAdminForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def _form(self, request, obj):
        return ChannelAdminForm(instance=obj or Channel())

    @admin.display(description="secrets")
    def secrets_state(self, channel: Channel) -> str:
        state = configure.secret_state(channel.kind, channel.secrets)
        return ", ".join(f"{name}: {value}" for name, value in state.items()) or "none"

    @admin.display(description="last error")
    def shown_error(self, channel: Channel) -> str:
        return configure.redact(channel.last_error, channel.secrets)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "enabled",
        "is_default",
        "rule",
        "severity",
        "location",
        "tag",
        "escalate_after_minutes",
    ]
    list_filter = ["enabled", "is_default", "severity"]
    list_select_related = ["rule", "location", "tag"]
    search_fields = ["name"]
    filter_horizontal = ["channels", "escalate_to"]


class ReadOnly(admin.ModelAdmin):
    """A log: shown, never written from the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = [
        "number",
        "at",
        "outcome",
        "status_code",
        "duration_ms",
        "shown_error",
        "shown_answer",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="error")
    def shown_error(self, attempt: Attempt) -> str:
        return configure.redact(attempt.error, attempt.delivery.channel.secrets)

    @admin.display(description="answer")
    def shown_answer(self, attempt: Attempt) -> str:
        return configure.redact(attempt.answer, attempt.delivery.channel.secrets)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = [
        "created",
        "notification",
        "channel",
        "purpose",
        "status",
        "attempts",
        "shown_error",
    ]
    list_filter = ["status", "purpose", "channel"]
    list_select_related = ["notification", "channel"]
    fields = [
        "notification",
        "channel",
        "purpose",
        "status",
        "key",
        "attempts",
        "created",
        "next_attempt_at",
        "claimed_at",
        "claimed_by",
        "sent_at",
        "shown_error",
    ]
    readonly_fields = fields
    inlines = [AttemptInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel", "notification")

    @admin.display(description="last error")
    def shown_error(self, delivery: Delivery) -> str:
        return configure.redact(delivery.last_error, delivery.channel.secrets)


@admin.register(Attempt)
class AttemptAdmin(ReadOnly):
    list_display = [
        "at",
        "delivery",
        "number",
        "outcome",
        "status_code",
        "duration_ms",
        "shown_error",
    ]
    list_filter = ["outcome"]
    list_select_related = ["delivery__channel"]
    fields = [
        "delivery",
        "number",
        "at",
        "outcome",
        "status_code",
        "duration_ms",
        "shown_error",
        "shown_answer",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("delivery__channel")

    @admin.display(description="error")
    def shown_error(self, attempt: Attempt) -> str:
        return configure.redact(attempt.error, attempt.delivery.channel.secrets)

    @admin.display(description="answer")
    def shown_answer(self, attempt: Attempt) -> str:
        return configure.redact(attempt.answer, attempt.delivery.channel.secrets)
