"""Slack incoming webhook: one message per notification, its bar coloured by
severity (green once resolved), one line per server.

Slack reads &, < and > as markup (`<!channel>` would ping everyone, `<url|x>`
makes a link), so every string that comes from a server, a label or a rule
is escaped the way Slack asks: &amp; &lt; &gt;, and nothing else.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from vigil.notify.channels._common import (
    KIND_WORDS,
    check_settings,
    dumps,
    format_value,
    one_line,
    required,
    subject,
    truncate,
    url_error,
)
from vigil.notify.transports import HttpTransport, Message, Sent, register

COLOURS = {"critical": "#d40e0d", "warning": "#f2a100", "info": "#2f7bd9"}
RESOLVED = "#2eb67d"
GONE = "#8d8d8d"
# Beyond this many servers a message says "and N more": a wall of lines
# helps no one on call.
MAX_ITEMS = 20
MAX_DESCRIPTION = 300


def escape(text: object) -> str:
    """Text made inert for Slack's mrkdwn: only &, < and > are escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def colour(message: Message) -> str:
    if message.kind == "resolved":
        return RESOLVED
    if message.kind == "gone":
        return GONE
    return COLOURS.get(message.severity, COLOURS["info"])


def item_line(item: dict, kind: str) -> str:
    """One server: *name* (location) value, its description, who acknowledged."""
    parts = [f"*{escape(one_line(subject(item)) or 'unknown')}*"]
    if item.get("server") and item.get("location"):
        parts.append(f"({escape(one_line(item['location']))})")
    value = format_value(item.get("value"))
    if value and kind not in ("resolved", "gone"):
        parts.append(f"value {escape(value)}")
    line = " ".join(parts)
    if description := one_line(str(item.get("description") or "")):
        line += " — " + escape(truncate(description, MAX_DESCRIPTION))
    if kind == "acknowledged" and item.get("acknowledged_by"):
        line += f"\nacknowledged by {escape(one_line(item['acknowledged_by']))}"
        if comment := one_line(str(item.get("comment") or "")):
            line += ": " + escape(truncate(comment, MAX_DESCRIPTION))
    return line


def text_of(message: Message) -> str:
    if message.is_test:
        return "This channel works: Vigil's notifications will arrive here."
    lines = [item_line(item, message.kind) for item in message.items[:MAX_ITEMS]]
    if len(message.items) > MAX_ITEMS:
        lines.append(f"and {len(message.items) - MAX_ITEMS} more")
    return "\n".join(lines)


def payload(message: Message) -> dict:
    """The JSON body Slack's incoming webhook receives."""
    title = escape(one_line(message.title))
    attachment: dict = {
        "fallback": title,
        "color": colour(message),
        "title": escape(one_line(message.rule)) if not message.is_test else "Vigil",
        "text": text_of(message),
        "mrkdwn_in": ["text"],
        "footer": f"Vigil · {KIND_WORDS.get(message.kind, message.kind).lower()}",
    }
    if message.link:
        attachment["title_link"] = message.link
    if message.created:
        with contextlib.suppress(ValueError):
            attachment["ts"] = int(datetime.fromisoformat(message.created).timestamp())
    return {"text": title, "attachments": [attachment]}


@register
class SlackTransport(HttpTransport):
    kind = "slack"
    label = "Slack"
    # The incoming webhook URL is itself the credential.
    secret_fields = ("webhook_url",)

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        if problem := url_error((secrets or {}).get("webhook_url")):
            return {"webhook_url": problem}
        return {}

    def notify(self, message: Message) -> Sent:
        check_settings(self)
        url = required(self.secrets, "webhook_url", "Slack webhook URL")
        return self.post(url, dumps(payload(message)), {})
