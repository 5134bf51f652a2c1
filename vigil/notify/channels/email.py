"""E-mail over SMTP: one message per notification, with a text and an HTML
part rendered from notify/email/ templates, to the channel's `to` list.

The server is VIGIL_EMAIL_URL, or the channel's own `smtp_url` secret; the
URL rules, TLS and the mapping of SMTP replies to retries live in
vigil.lib.smtp (docs/channels.md, "E-mail"). A channel's own server is held
to the SSRF guard of the HTTP channels (VIGIL_NOTIFY_ALLOWED_NETWORKS):
whoever edits channels could otherwise point it at an internal service and
read its banner in the delivery log. The operator's VIGIL_EMAIL_URL may name
any address, a relay on the same machine included.

The Message-ID derives from the delivery key, so every retry of one delivery
is the same message to mail systems that drop duplicates; References name
each alert's key, so that the firing, acknowledged and resolved mails of one
alert thread together.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from vigil.lib import smtp
from vigil.notify.transports import (
    Message,
    Sent,
    Transport,
    TransportError,
    _allowed_networks,
    register,
)

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
MAX_SUBJECT = 200
MAX_REFERENCES = 20

KIND_LABELS = {
    "firing": "Firing",
    "repeat": "Still firing",
    "resolved": "Resolved",
    "acknowledged": "Acknowledged",
    "flapping": "Flapping",
    "gone": "Stopped reporting",
    "test": "Test",
}
SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#e65100", "info": "#1565c0"}
RESOLVED_COLOUR = "#2e7d32"
NEUTRAL_COLOUR = "#546e7a"


# --- Configuration -----------------------------------------------------------------


def default_sender() -> str:
    """vigil@ the host of VIGIL_BASE_URL when that is a domain name."""
    host = urlsplit(settings.BASE_URL).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." in host and smtp.valid_address(f"vigil@{host}"):
            return f"vigil@{host}"
    return "vigil@localhost"


def parse_smtp_url(url: str) -> smtp.SmtpServer:
    return smtp.parse_url(url, default_sender())


def recipients(config: dict) -> list[str]:
    """The `to` addresses of a channel, without repeats; ValueError if invalid.
    A string of addresses separated by commas or lines is accepted too."""
    to = config.get("to")
    if isinstance(to, str):
        to = to.replace(",", "\n").splitlines()
    if not isinstance(to, list) or not all(isinstance(a, str) for a in to):
        raise ValueError("give a list of e-mail addresses")
    out: list[str] = []
    seen: set[str] = set()
    for address in (a.strip() for a in to):
        if not address:
            continue
        if not smtp.valid_address(address):
            raise ValueError(f"{address[:100]!r} is not an e-mail address")
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    if not out:
        raise ValueError("give at least one e-mail address")
    if len(out) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} addresses")
    return out


# --- The message -----------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def format_value(value) -> str:
    """A reading for people: 97.5, 0.0012, 1,234,567 (no exponents, no 97.50000001)."""
    if value is None or isinstance(value, bool):
        return ""
    if not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e6 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) < 1:
        return f"{value:.4g}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _row(item: dict) -> dict:
    """One alert as the templates show it. Every field but the description
    is one line, so that no value can pose as another line of the text part."""
    labels = item.get("labels") or {}
    if isinstance(labels, dict):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    description = "\n".join(
        line.rstrip() for line in str(item.get("description") or "").splitlines()
    ).strip()
    return {
        "server": one_line(str(item.get("server") or item.get("location") or ""), 500),
        "location": one_line(str(item.get("location") or ""), 500) if item.get("server") else "",
        "value": format_value(item.get("value")),
        "labels": one_line(str(labels), 2000),
        "description": description,
        # The text part indents the lines of a description under its server.
        "description_text": description.replace("\n", "\n  "),
        "fired": _when(item.get("fired_at")),
        "resolved": _when(item.get("resolved_at")),
        "predicted": _when(item.get("predicted_at")),
        "acknowledged_by": one_line(str(item.get("acknowledged_by") or ""), 200),
        "comment": one_line(str(item.get("comment") or ""), 500),
    }


def context(message: Message) -> dict:
    if message.kind == "resolved":
        colour = RESOLVED_COLOUR
    elif message.kind == "test":
        colour = NEUTRAL_COLOUR
    else:
        colour = SEVERITY_COLOURS.get(message.severity, NEUTRAL_COLOUR)
    rows = [_row(item) for item in message.items]
    acknowledgers = sorted({r["acknowledged_by"] for r in rows if r["acknowledged_by"]})
    return {
        "message": message,
        "title": one_line(message.title, 500),
        "rule": one_line(message.rule, 200),
        "severity": one_line(message.severity, 20),
        "kind_label": KIND_LABELS.get(message.kind, message.kind.capitalize()),
        "colour": colour,
        "rows": rows,
        "show_predicted": any(r["predicted"] for r in rows),
        "show_acknowledged": any(r["acknowledged_by"] for r in rows),
        "acknowledged_by": ", ".join(acknowledgers) if message.kind == "acknowledged" else "",
        "created": _when(message.created),
    }


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """A header value: every line break and run of spaces becomes one space
    (str.split also splits on the Unicode line separators), so that no user
    string can start a header of its own."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render(message: Message) -> Rendered:
    """Subject, text and HTML of a message, from notify/email/ templates."""
    ctx = context(message)
    return Rendered(
        subject=one_line(render_to_string("notify/email/subject.txt", ctx)),
        text=render_to_string("notify/email/body.txt", ctx),
        html=render_to_string("notify/email/body.html", ctx),
    )


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2].strip("[]") or "localhost"


def _id_part(text: str) -> str:
    """Only what a msg-id may hold (RFC 5322 dot-atom-text, safely narrowed)."""
    return re.sub(r"[^A-Za-z0-9._-]", "", text)[:100] or "x"


def thread_ids(message: Message, domain: str) -> list[str]:
    """The Message-IDs that firing, resolved and acknowledged mails of the
    same alerts all refer to: no mail carries them, yet clients that thread
    by References (RFC 5322, JWZ threading) group the mails under them."""
    keys = [_id_part(str(item["key"])) for item in message.items if item.get("key")]
    return [f"<{key}@{domain}>" for key in dict.fromkeys(keys)][:MAX_REFERENCES]


def build(message: Message, sender: str, to: list[str]) -> EmailMessage:
    """The e-mail of one message. Every retry of a delivery builds the same
    headers (its Date is the notification's time, not the attempt's)."""
    rendered = render(message)
    domain = _domain(sender)
    mail = EmailMessage(policy=SMTP)
    mail["Subject"] = rendered.subject
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    try:
        created = datetime.fromisoformat(message.created)
    except ValueError:
        created = None
    mail["Date"] = format_datetime(created if created and created.tzinfo else timezone.now())
    if message.delivery_key:
        mail["Message-ID"] = f"<{_id_part(message.delivery_key)}.vigil@{domain}>"
    else:
        mail["Message-ID"] = make_msgid("vigil", domain)
    references = thread_ids(message, domain)
    if references:
        mail["In-Reply-To"] = references[0]
        mail["References"] = " ".join(references)
    # RFC 3834: vacation responders must not answer.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Vigil-Kind"] = one_line(message.kind, 20)
    mail["X-Vigil-Severity"] = one_line(message.severity, 20)
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    return mail


# --- The channel -------------------------------------------------------------------


@register
class EmailTransport(Transport):
    """Sends each notification as one e-mail to the channel's `to` list."""

    kind = "email"
    label = "E-mail"
    secret_fields = ("smtp_url",)

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        try:
            recipients(config or {})
        except ValueError as exc:
            errors["to"] = str(exc)
        url = (secrets or {}).get("smtp_url") or ""
        if url:
            try:
                parse_smtp_url(url)
            except ValueError as exc:
                errors["smtp_url"] = str(exc)
        elif not settings.EMAIL_URL:
            errors["smtp_url"] = "VIGIL_EMAIL_URL is not set: give this channel an SMTP server URL"
        return errors

    def server(self) -> tuple[smtp.SmtpServer, list | None]:
        """The SMTP server, and the networks it may be in (None: any)."""
        own = self.secrets.get("smtp_url") or ""
        url = own or settings.EMAIL_URL
        if not url:
            raise TransportError("VIGIL_EMAIL_URL is not set", permanent=True)
        try:
            server = parse_smtp_url(url)
        except ValueError as exc:
            where = "the channel's SMTP URL" if own else "VIGIL_EMAIL_URL"
            raise TransportError(f"{where}: {exc}", permanent=True) from None
        return server, (_allowed_networks() if own else None)

    def notify(self, message: Message) -> Sent:
        try:
            to = recipients(self.config)
        except ValueError as exc:
            raise TransportError(f"the channel's addresses: {exc}", permanent=True) from None
        server, allowed = self.server()
        data = build(message, server.sender, to).as_bytes(policy=SMTP)
        try:
            reply = smtp.send(
                server, to, data, cafile=settings.EMAIL_CA_FILE, allowed_networks=allowed
            )
        except smtp.SmtpError as exc:
            raise TransportError(
                str(exc), permanent=exc.permanent, status=exc.code, answer=exc.reply
            ) from None
        answer = reply.text
        if reply.refused:
            # Sent to the others; a retry would send them a second copy.
            log.warning("SMTP server at %s refused %s", server.where, ", ".join(reply.refused))
            answer += "; refused: " + "; ".join(
                f"{address} ({code} {text})" for address, (code, text) in reply.refused.items()
            )
        return Sent(reply.code, answer[:500])
