"""Generic webhook: one signed JSON POST per notification (docs/webhooks.md).

The body is the same on every attempt of one delivery, and so is its
X-Vigil-Delivery header, so a receiver can drop the copy that a timed-out
attempt may have delivered. With a secret set, X-Vigil-Signature is the
HMAC-SHA256 of "<X-Vigil-Timestamp>.<body>": a receiver proves the body
came from Vigil, unchanged, and recently.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from vigil.notify.channels._common import check_settings, dumps, header_errors, required, url_error
from vigil.notify.transports import HttpTransport, Message, Sent, register

VERSION = 1
# The fields of each item, in the order docs/webhooks.md lists them.
ITEM_FIELDS = (
    "alert",
    "key",
    "rule",
    "severity",
    "server",
    "location",
    "labels",
    "value",
    "description",
    "fired_at",
    "resolved_at",
    "predicted_at",
    "acknowledged_by",
    "comment",
)


def payload(message: Message) -> dict:
    """The documented JSON document of one notification."""
    return {
        "version": VERSION,
        "delivery": message.delivery_key,
        "kind": message.kind,
        "test": message.is_test,
        "title": message.title,
        "severity": message.severity,
        "rule": message.rule,
        "link": message.link,
        "created": message.created,
        "items": [{name: item.get(name) for name in ITEM_FIELDS} for item in message.items],
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Vigil-Signature value: sha256=<hex HMAC of "timestamp.body">."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers_for(message: Message, body: bytes, secret: str, extra: dict, now: float) -> dict:
    headers = dict(extra or {})
    timestamp = str(int(now))
    headers.update(
        {
            "X-Vigil-Delivery": message.delivery_key,
            "X-Vigil-Event": message.kind,
            "X-Vigil-Timestamp": timestamp,
        }
    )
    if secret:
        headers["X-Vigil-Signature"] = signature(secret, timestamp, body)
    return headers


def signing_key_error(key: object) -> str | None:
    if not isinstance(key, str):
        return "The signing key must be text."
    if key and len(key) < 16:
        return "Use a signing key of at least 16 characters."
    return None


@register
class WebhookTransport(HttpTransport):
    kind = "webhook"
    label = "Webhook"
    # `url` here instead of in config when it carries a token or a password.
    secret_fields = ("secret", "url")

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        config, secrets = config or {}, secrets or {}
        shown, hidden = config.get("url"), secrets.get("url")
        if shown and hidden:
            errors["url"] = "Give the URL once: in the settings, or as a secret."
        elif hidden:
            if problem := url_error(hidden):
                errors["url"] = problem
        elif problem := url_error(shown, credentials=False):
            errors["url"] = problem
        if problem := header_errors(config.get("headers")):
            errors["headers"] = problem
        if problem := signing_key_error(secrets.get("secret", "")):
            errors["secret"] = problem
        return errors

    def notify(self, message: Message) -> Sent:
        check_settings(self)
        body = dumps(payload(message))
        url = self.secrets.get("url") or required(self.config, "url", "URL")
        headers = headers_for(
            message, body, self.secrets.get("secret", ""), self.config.get("headers"), time.time()
        )
        return self.post(url, body, headers)
