"""Forms of the channel and route editors.

A channel's settings become one field each (vigil.notify.configure says
which), or one JSON object when its kind declares none. Its secrets are
password inputs that are never filled in: empty keeps the stored value,
"clear" removes it, anything else replaces it. The transport's validate()
checks the result, so the pages, the admin and the API refuse the same
settings for the same reasons.
"""

from __future__ import annotations

import orjson
from django import forms

from vigil.notify import configure
from vigil.notify.configure import Field
from vigil.notify.models import Channel, Route

CONFIG = "config__"
WRITE_ONLY = "secret__"
CLEAR = "clear__"
MAX_CONFIG_BYTES = 64 * 1024


def _to_text(field: Field, value: object) -> object:
    """A stored setting as its form field shows it."""
    if value is None:
        return ""
    if field.type == "list" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if field.type == "mapping" and isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def _from_text(field: Field, text: str) -> object:
    """A form value as the setting stored; ValidationError if unreadable."""
    if field.type == "list":
        return _lines(text)
    if field.type == "mapping":
        out: dict[str, str] = {}
        for number, line in enumerate(_lines(text), 1):
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise forms.ValidationError(f"Line {number} is not “Name: value”.")
            out[name.strip()] = value.strip()
        return out
    return text.strip()


def _form_field(field: Field) -> forms.Field:
    common = {"label": field.label, "help_text": field.help, "required": False}
    attrs = {"placeholder": field.placeholder} if field.placeholder else {}
    if field.type == "choice":
        return forms.ChoiceField(choices=[("", "—"), *field.choices], **common)
    if field.type in ("list", "mapping"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3, **attrs}), **common)
    widget = forms.URLInput if field.type == "url" else forms.TextInput
    return forms.CharField(widget=widget(attrs={"size": 60, **attrs}), **common)


class ChannelForm(forms.ModelForm):
    """A channel of one kind; `kind` is fixed once the channel exists."""

    class Meta:
        model = Channel
        fields = ["name", "enabled", "is_fallback"]
        labels = {"is_fallback": "Fallback channel"}

    def __init__(self, *args, kind: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.instance.kind = kind
        stored = self.instance.config or {}
        self.config_spec = configure.config_fields(kind)
        if self.config_spec is None:
            self.fields["config_json"] = forms.CharField(
                label="Settings (JSON)",
                required=False,
                widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
                help_text=f"A JSON object: the settings of a {configure.label_of(kind)} channel.",
                initial=orjson.dumps(stored, option=orjson.OPT_INDENT_2).decode(),
            )
        else:
            for spec in self.config_spec:
                self.fields[CONFIG + spec.name] = _form_field(spec)
                self.initial[CONFIG + spec.name] = _to_text(spec, stored.get(spec.name))
        self.secret_state = configure.secret_state(kind, self.instance.secrets)
        self.secret_names = configure.secret_fields(kind, self.instance.secrets)
        for name in self.secret_names:
            label, hint = configure.secret_text(kind, name)
            self.fields[WRITE_ONLY + name] = forms.CharField(
                label=label,
                required=False,
                strip=False,
                help_text=hint,
                # Never rendered back, not even after a failed submit.
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
            )
            self.fields[CLEAR + name] = forms.BooleanField(
                label=f"Clear the {label.lower()}", required=False
            )

    # --- Grouping for the template ---------------------------------------

    def config_bound_fields(self) -> list[forms.BoundField]:
        return [self[n] for n in self.fields if n.startswith(CONFIG) or n == "config_json"]

    def secret_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, str]]:
        """(password field, clear checkbox, "set" / "not set") per secret."""
        return [
            (self[WRITE_ONLY + n], self[CLEAR + n], self.secret_state.get(n, configure.NOT_SET))
            for n in self.secret_names
        ]

    # --- Cleaning --------------------------------------------------------

    def _config(self) -> dict:
        data = self.cleaned_data
        if self.config_spec is None:
            text = (data.get("config_json") or "").strip() or "{}"
            if len(text.encode()) > MAX_CONFIG_BYTES:
                self.add_error("config_json", "The settings are larger than 64 KiB.")
                return {}
            try:
                config = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self.add_error("config_json", f"Not valid JSON: {exc}")
                return {}
            if not isinstance(config, dict):
                self.add_error("config_json", 'Give a JSON object: {"name": value, …}.')
                return {}
            return config
        # Settings the editor does not show (set through the API) are kept.
        config = dict(self.instance.config or {})
        for spec in self.config_spec:
            key = CONFIG + spec.name
            if key not in data:
                continue  # its own error is already reported
            try:
                value = _from_text(spec, data[key] or "")
            except forms.ValidationError as exc:
                self.add_error(key, exc)
                continue
            if value in ("", [], {}):
                config.pop(spec.name, None)
            else:
                config[spec.name] = value
        return config

    def _secrets(self) -> dict:
        given: dict[str, str | None] = {}
        for name in self.secret_names:
            value = self.cleaned_data.get(WRITE_ONLY + name) or ""
            if self.cleaned_data.get(CLEAR + name):
                if value:
                    self.add_error(CLEAR + name, "Either type a new value or clear it, not both.")
                given[name] = None
            elif value:
                if "\x00" in value:
                    self.add_error(WRITE_ONLY + name, "Null characters are not allowed.")
                given[name] = value
        merged, _ = configure.merge_secrets(self.kind, self.instance.secrets, given)
        return merged

    def clean(self) -> dict:
        data = super().clean()
        config, secrets = self._config(), self._secrets()
        unreadable = any(
            k.startswith((CONFIG, WRITE_ONLY, CLEAR)) or k == "config_json" for k in self.errors
        )
        if unreadable:
            return data
        for key, message in configure.validate(self.kind, config, secrets).items():
            target = configure.error_target(self.kind, key, config, secrets)
            if target == "secrets" and WRITE_ONLY + key in self.fields:
                self.add_error(WRITE_ONLY + key, message)
            elif CONFIG + key in self.fields:
                self.add_error(CONFIG + key, message)
            elif WRITE_ONLY + key in self.fields:
                self.add_error(WRITE_ONLY + key, message)
            elif key == "kind":
                self.add_error(None, message)
            elif "config_json" in self.fields:
                self.add_error("config_json", f"{key}: {message}")
            else:
                self.add_error(None, f"{key}: {message}")
        data["config"], data["secrets"] = config, secrets
        return data

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        channel.kind = self.kind
        channel.config = self.cleaned_data["config"]
        channel.secrets = self.cleaned_data["secrets"]
        if commit:
            channel.save()
        return channel


class RouteForm(forms.ModelForm):
    class Meta:
        model = Route
        fields = [
            "name",
            "enabled",
            "is_default",
            "rule",
            "severity",
            "location",
            "tag",
            "channels",
            "escalate_after_minutes",
            "escalate_to",
        ]
        widgets = {
            "channels": forms.CheckboxSelectMultiple,
            "escalate_to": forms.CheckboxSelectMultiple,
        }
        labels = {
            "is_default": "Default route",
            "escalate_after_minutes": "Escalate after (minutes)",
            "escalate_to": "Escalate to",
        }
        help_texts = {
            "rule": "Empty: any rule",
            "location": "Empty: anywhere",
            "tag": "Empty: any tag",
            "escalate_to": "Notified when a firing alert is still unacknowledged after the "
            "minutes above",
        }

    GROUPS = [
        ("Route", ["name", "enabled", "is_default"]),
        ("When", ["rule", "severity", "location", "tag"]),
        ("Notify", ["channels"]),
        ("Escalation", ["escalate_after_minutes", "escalate_to"]),
    ]

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in self.GROUPS]

    def clean(self) -> dict:
        data = super().clean()
        minutes = data.get("escalate_after_minutes") or 0
        for key, message in configure.route_errors(
            minutes, list(data.get("escalate_to") or [])
        ).items():
            self.add_error(key, message)
        return data
