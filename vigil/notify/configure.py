"""Editing channels, shared by the pages, the admin, the API and the CLI:
which kinds exist, which settings each kind shows, how write-only secrets
are changed and reported, and how an error text is cleaned of secrets
before anyone sees it.

The kinds come from the transport registry, so a new channel module
appears here by itself. Its settings are shown as fields when its
transport declares `config_fields` (or when FIELDS below knows the kind),
else as one JSON object; its secrets are always `Transport.secret_fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from vigil.notify.transports import REGISTRY, Transport

SET, NOT_SET = "set", "not set"
# What is shown instead of a secret that turns up in an error or an answer.
HIDDEN = "••••••"
# Shorter values are too likely to occur in ordinary text to be masked.
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True)
class Field:
    """One setting of a channel kind as an editor shows it.

    `type`: text, url, choice, list (one value per line, stored as a JSON
    list of strings) or mapping ("Name: value" lines, stored as an object)."""

    name: str
    label: str
    type: str = "text"
    help: str = ""
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""


# The settings of the channels that ship with Vigil, for transports that do
# not declare `config_fields` themselves. Keep in step with each module's
# validate() (a test checks that every key it asks for is offered).
FIELDS: dict[str, tuple[Field, ...]] = {
    "email": (
        Field(
            "to",
            "Recipients",
            "list",
            "One e-mail address per line.",
            required=True,
            placeholder="oncall@example.com",
        ),
    ),
    "webhook": (
        Field(
            "url",
            "URL",
            "url",
            "Where the JSON is POSTed. A URL that carries a token or a password goes "
            "in the secret URL below instead.",
            placeholder="https://example.com/hooks/vigil",
        ),
        Field(
            "headers",
            "Extra headers",
            "mapping",
            "One “Name: value” per line, sent with every request.",
            placeholder="X-Team: ops",
        ),
    ),
    "pagerduty": (
        Field(
            "api_base",
            "API base URL",
            "url",
            "Empty: https://events.pagerduty.com.",
            placeholder="https://events.pagerduty.com",
        ),
    ),
    "opsgenie": (
        Field(
            "region",
            "Region",
            "choice",
            "Where the Opsgenie account lives.",
            choices=(("us", "US (api.opsgenie.com)"), ("eu", "EU (api.eu.opsgenie.com)")),
        ),
        Field("api_base", "API base URL", "url", "Empty: the region's API."),
    ),
    "sms": (
        Field(
            "account_sid",
            "Account SID",
            help="AC followed by 32 hexadecimal digits.",
            required=True,
            placeholder="AC0123456789abcdef0123456789abcdef",
        ),
        Field(
            "from_number",
            "Sender",
            help="A number in E.164 format, or an alphanumeric sender ID of at most 11 characters.",
            required=True,
            placeholder="+4915112345678",
        ),
        Field(
            "to_numbers",
            "Recipients",
            "list",
            "One number per line, in E.164 format.",
            required=True,
            placeholder="+4915187654321",
        ),
        Field("api_base", "API base URL", "url", "Empty: https://api.twilio.com."),
    ),
    "slack": (),
}

SECRET_TEXT: dict[tuple[str, str], tuple[str, str]] = {
    ("email", "smtp_url"): (
        "SMTP server URL",
        "smtp://user:password@host:587 (STARTTLS) or smtps://…:465. "
        "Empty: the server of VIGIL_EMAIL_URL.",
    ),
    ("webhook", "secret"): (
        "Signing key",
        "Signs each request in X-Vigil-Signature (HMAC-SHA256); at least 16 characters. "
        "Not set: requests are not signed.",
    ),
    ("webhook", "url"): ("Secret URL", "Instead of the URL above, when the URL is a credential."),
    ("pagerduty", "routing_key"): (
        "Routing key",
        "The integration key of an Events API v2 integration: 32 letters and digits.",
    ),
    ("opsgenie", "api_key"): ("API key", "The key of an API integration (GenieKey)."),
    ("slack", "webhook_url"): (
        "Incoming webhook URL",
        "https://hooks.slack.com/services/…: the URL itself is the credential.",
    ),
    ("sms", "auth_token"): ("Auth token", "The account's auth token."),
}


def _registry() -> dict[str, type[Transport]]:
    from vigil.notify import channels  # noqa: F401 (registers every channel)

    return REGISTRY


def kinds() -> list[tuple[str, str]]:
    """(kind, label) of every channel kind Vigil can send through, by label."""
    found = [(kind, cls.label or kind) for kind, cls in _registry().items()]
    return sorted(found, key=lambda pair: pair[1].lower())


def transport(kind: str) -> type[Transport] | None:
    return _registry().get(kind)


def label_of(kind: str) -> str:
    cls = transport(kind)
    return (cls.label if cls else "") or kind


def _declared(cls: type[Transport]) -> tuple[Field, ...] | None:
    """A transport's own `config_fields`: Field objects, names, or
    (name, label[, help]) tuples."""
    declared = getattr(cls, "config_fields", None)
    if declared is None:
        return None
    out: list[Field] = []
    for entry in declared:
        if isinstance(entry, Field):
            out.append(entry)
        elif isinstance(entry, str):
            out.append(Field(entry, entry.replace("_", " ").capitalize()))
        else:
            name, label, *rest = entry
            out.append(Field(name, label, help=rest[0] if rest else ""))
    return tuple(out)


def config_fields(kind: str) -> tuple[Field, ...] | None:
    """The settings an editor shows for `kind`; None when unknown (then the
    editor takes the whole config as a JSON object)."""
    cls = transport(kind)
    if cls is not None and (declared := _declared(cls)) is not None:
        return declared
    return FIELDS.get(kind)


def secret_fields(kind: str, stored: dict | None = None) -> tuple[str, ...]:
    """The secrets of `kind`; for a kind no transport serves any more, the
    names stored (so they can still be cleared)."""
    cls = transport(kind)
    if cls is not None:
        return tuple(cls.secret_fields)
    return tuple(sorted(stored or {}))


def secret_text(kind: str, name: str) -> tuple[str, str]:
    """(label, help) of a secret field."""
    return SECRET_TEXT.get((kind, name), (name.replace("_", " ").capitalize(), ""))


def secret_state(kind: str, secrets: dict | None) -> dict[str, str]:
    """Each secret field of `kind` as "set" or "not set": all that is ever
    said about a secret."""
    secrets = secrets or {}
    return {name: SET if secrets.get(name) else NOT_SET for name in secret_fields(kind, secrets)}


def merge_secrets(
    kind: str, stored: dict | None, given: dict[str, str | None]
) -> tuple[dict[str, str], dict[str, str]]:
    """The secrets after a change, and errors per field.

    `given` maps a secret field to its new value, or None to clear it; a field
    not given keeps its value (the client never saw it, so it cannot send it
    back). Stored keys that the kind does not know are dropped."""
    names = secret_fields(kind, stored)
    merged = {k: v for k, v in (stored or {}).items() if k in names and v}
    errors: dict[str, str] = {}
    for name, value in given.items():
        if name not in names:
            known = ", ".join(names) or "none"
            errors[name[:100]] = f"not a secret of a {kind} channel (its secrets: {known})"
        elif value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged, errors


def validate(kind: str, config: dict, secrets: dict) -> dict[str, str]:
    """The transport's own checks of a channel's settings and secrets."""
    cls = transport(kind)
    if cls is None:
        return {"kind": f"no channel of kind {kind!r} is installed"}
    return {str(k): str(v) for k, v in (cls.validate(config, secrets) or {}).items()}


def error_target(kind: str, key: str, config: dict, secrets: dict) -> str:
    """Whether validate()'s error about `key` is about a setting ("config") or
    a secret ("secrets"): a key may be both (a webhook's URL is a setting, or
    a secret when it carries a token), and then the one given decides."""
    secret = key in secret_fields(kind, secrets)
    if key in config or not secret:
        return "config"
    if secrets.get(key):
        return "secrets"
    declared = {f.name for f in config_fields(kind) or ()}
    return "config" if key in declared else "secrets"


def _variants(value: str) -> set[str]:
    """A secret as it may appear in a text: itself, URL-encoded, and the
    password part of a URL."""
    out = {value, quote(value, safe="")}
    try:
        password = urlsplit(value).password
    except ValueError:
        password = None
    if password:
        out.update({password, unquote(password)})
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


def redact(text: str, secrets: dict | None) -> str:
    """`text` (an error, a receiver's answer) with every secret of the
    channel masked: a receiver or a library may quote what it was sent."""
    if not text or not secrets:
        return text or ""
    found: set[str] = set()
    for value in secrets.values():
        if isinstance(value, str):
            found |= _variants(value)
    for value in sorted(found, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


def route_errors(escalate_after_minutes: int, escalate_to: list) -> dict[str, str]:
    """An escalation needs both a delay and somewhere to go."""
    if escalate_after_minutes and not escalate_to:
        return {"escalate_to": "Choose the channels to escalate to, or set the minutes to 0."}
    if escalate_to and not escalate_after_minutes:
        return {"escalate_after_minutes": "Set after how many minutes to escalate."}
    return {}
