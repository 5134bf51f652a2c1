"""SMS through an HTTP provider with Twilio's Messages API shape: one
form-encoded POST per recipient, answered 201 with the message resource.

A page should be one SMS: the text is compact (severity, rule, first server,
value, how many more) and cut to one segment, 160 GSM-7 characters, or 70
when a character outside the GSM alphabet forces UCS-2. The link is added
only when it still fits.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, urlencode

from vigil.notify.channels._common import (
    E164,
    check_settings,
    format_value,
    one_line,
    required,
    secret_error,
    subject,
    url_error,
)
from vigil.notify.transports import HttpTransport, Message, Sent, TransportError, register

DEFAULT_API_BASE = "https://api.twilio.com"
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
# An alphanumeric sender ID: up to 11 letters, digits and spaces, one letter at least.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

# GSM 03.38: the default alphabet (one septet each) and the extension table
# (an escape plus one septet: two each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM_SINGLE, GSM_PART = 160, 153  # septets in one SMS; in each part of a long one
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units


def is_gsm(text: str) -> bool:
    """Whether the whole text can be sent in the GSM 7-bit alphabet."""
    return all(c in GSM_BASIC or c in GSM_EXTENDED for c in text)


def _cost(char: str, gsm: bool) -> int:
    if gsm:
        return 2 if char in GSM_EXTENDED else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair in UTF-16


def length(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes."""
    gsm = is_gsm(text)
    return sum(_cost(c, gsm) for c in text)


def segments(text: str) -> int:
    """How many SMS the text is sent as."""
    size = length(text)
    single, part = (GSM_SINGLE, GSM_PART) if is_gsm(text) else (UCS2_SINGLE, UCS2_PART)
    if size <= single:
        return 1
    return -(-size // part)


def fit(text: str) -> str:
    """The text cut to one segment, with an ellipsis when cut ("..." in GSM-7,
    where "…" does not exist; "…" in UCS-2, where it costs one unit)."""
    if segments(text) == 1:
        return text
    gsm = is_gsm(text)
    limit, ellipsis = (GSM_SINGLE, "...") if gsm else (UCS2_SINGLE, "…")
    budget = limit - sum(_cost(c, gsm) for c in ellipsis)
    kept: list[str] = []
    for char in text:
        budget -= _cost(char, gsm)
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept).rstrip() + ellipsis


WORDS = {
    "repeat": "STILL {severity}",
    "flapping": "FLAPPING",
    "acknowledged": "ACK",
    "resolved": "RESOLVED",
    "gone": "GONE",
}


def sms_text(message: Message) -> str:
    """'CRITICAL disk full: web-1 97.3 +2 more https://…', one segment."""
    if message.is_test:
        text = "Vigil test: SMS notifications from this channel will arrive on this phone."
        return fit(text)
    severity = message.severity.upper()
    word = WORDS.get(message.kind, "{severity}").format(severity=severity)
    text = f"{word} {message.rule}"
    if message.items:
        first = message.items[0]
        text += f": {subject(first)}"
        if message.kind not in ("resolved", "gone") and (value := format_value(first.get("value"))):
            text += f" {value}"
        if message.kind == "acknowledged" and first.get("acknowledged_by"):
            text += f" by {first['acknowledged_by']}"
        if len(message.items) > 1:
            text += f" +{len(message.items) - 1} more"
    text = one_line(text)
    if message.link:
        with_link = f"{text} {message.link}"
        if segments(with_link) == 1:
            return with_link
    return fit(text)


def recipients(config: dict) -> list[str]:
    numbers = config.get("to_numbers") or []
    if isinstance(numbers, str):
        numbers = numbers.split(",")
    return [str(n).strip() for n in numbers if str(n).strip()]


def form(to: str, sender: str, body: str) -> bytes:
    return urlencode({"To": to, "From": sender, "Body": body}).encode()


@register
class SmsTransport(HttpTransport):
    kind = "sms"
    label = "SMS (Twilio API)"
    secret_fields = ("auth_token",)

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        config = config or {}
        sid = config.get("account_sid")
        if not sid:
            errors["account_sid"] = "The account SID is required."
        elif not isinstance(sid, str) or not ACCOUNT_SID.fullmatch(sid):
            errors["account_sid"] = "An account SID is AC followed by 32 hexadecimal digits."
        sender = config.get("from_number")
        if not sender:
            errors["from_number"] = "The sender number is required."
        elif not isinstance(sender, str) or not (
            E164.fullmatch(sender) or ALPHANUMERIC_SENDER.fullmatch(sender)
        ):
            errors["from_number"] = (
                "Give the sender in E.164 format (+4915112345678) or as an alphanumeric "
                "sender ID of at most 11 characters."
            )
        numbers = config.get("to_numbers")
        if not isinstance(numbers, list | str) or not recipients(config):
            errors["to_numbers"] = "Give at least one recipient number."
        elif bad := [n for n in recipients(config) if not E164.fullmatch(n)]:
            errors["to_numbers"] = (
                f"{bad[0][:20]!r} is not in E.164 format: a plus, the country code and the "
                "number, digits only (+4915112345678)."
            )
        if problem := secret_error((secrets or {}).get("auth_token"), "auth token"):
            errors["auth_token"] = problem
        base = config.get("api_base")
        if base and (problem := url_error(base, credentials=False)):
            errors["api_base"] = problem
        return errors

    def notify(self, message: Message) -> Sent:
        """Send to every recipient; one failing does not keep the others from
        their page. The error then names who did not get it."""
        check_settings(self)
        sid = required(self.config, "account_sid", "account SID")
        sender = required(self.config, "from_number", "sender number")
        token = required(self.secrets, "auth_token", "auth token")
        everyone = recipients(self.config)
        if not everyone:
            raise TransportError("the channel has no recipient numbers", permanent=True)
        # A retry goes only to those an earlier attempt did not reach.
        numbers = [n for n in everyone if n not in message.done] or everyone
        base = (self.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json"
        auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
        body = sms_text(message)
        sent: list[Sent] = []
        reached: list[str] = []
        failed: list[tuple[str, TransportError]] = []
        for number in numbers:
            try:
                sent.append(
                    self.post(
                        url,
                        form(number, sender, body),
                        headers,
                        content_type="application/x-www-form-urlencoded",
                    )
                )
                reached.append(number)
            except TransportError as exc:
                failed.append((number, exc))
        if not failed:
            return Sent(sent[-1].status, "\n".join(s.answer for s in sent)[:2000])
        number, first = failed[0]
        retryable = [exc for _, exc in failed if not exc.permanent]
        waits = [exc.retry_after for exc in retryable if exc.retry_after is not None]
        raise TransportError(
            f"sent to {len(sent)} of {len(numbers)} recipients; {number}: {first}",
            permanent=not retryable,
            retry_after=max(waits) if waits else None,
            status=first.status,
            answer=first.answer,
            done=reached,
        )
