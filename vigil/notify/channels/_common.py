"""Small pieces the HTTP channels share: how a value and a subject read,
and the checks of URLs, header names and phone numbers behind validate().

Pure functions: no models, no settings, tested without a database.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

import orjson

from vigil.notify.transports import Sent, Transport, TransportError

# RFC 9110 token: the characters an HTTP header name may have.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# E.164: a plus, a country code that does not start with 0, at most 15 digits.
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The word each kind of notification is said with, for the channels whose
# text is short (SMS, Opsgenie notes, Slack fallbacks).
KIND_WORDS = {
    "firing": "FIRING",
    "repeat": "STILL FIRING",
    "flapping": "FLAPPING",
    "acknowledged": "ACKNOWLEDGED",
    "resolved": "RESOLVED",
    "gone": "STOPPED REPORTING",
    "test": "TEST",
}


def format_value(value: object) -> str:
    """A measured value as people read it: 97.35, 12, 0.000123; empty for none."""
    if value is None or isinstance(value, bool):
        return ""
    if not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def subject(item: dict) -> str:
    """What an alert is about: its server, or its location for an outage."""
    return str(item.get("server") or item.get("location") or "")


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)].rstrip() + ellipsis


def one_line(text: str) -> str:
    """Line breaks and other control characters as spaces (titles, SMS)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def dumps(doc: object) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


def url_error(value: object, *, credentials: bool = True) -> str | None:
    """Why `value` is not a usable http(s) URL, or None when it is."""
    if not isinstance(value, str) or not value.strip():
        return "This URL is required."
    if value != value.strip() or _CONTROL.search(value) or " " in value:
        return "The URL may not contain spaces or control characters."
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        return "The URL must start with https:// (or http://)."
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        return "The URL has an invalid port."
    if not host:
        return "The URL has no host name."
    if not credentials and (parts.username is not None or parts.password is not None):
        return "A URL with a user name or password belongs in the secret URL field."
    return None


def header_errors(headers: object) -> str | None:
    """Why custom headers are unusable, or None: names must be HTTP tokens,
    values single-line text, and Vigil's own headers cannot be replaced."""
    if headers in (None, ""):
        return None
    if not isinstance(headers, dict):
        return "Headers must be a mapping of names to values."
    reserved = {"host", "content-length", "content-type", "transfer-encoding", "connection"}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            return f"{str(name)[:40]!r} is not a valid header name (letters, digits, - and _)."
        if name.lower() in reserved or name.lower().startswith("x-vigil-"):
            return f"The header {name} is set by Vigil and cannot be replaced."
        if not isinstance(value, str):
            return f"The value of {name} must be text."
        if _CONTROL.search(value.replace("\t", " ")):
            return f"The value of {name} may not contain line breaks or control characters."
    return None


def secret_error(value: object, what: str) -> str | None:
    """A token sent in a header or URL: required, one line, no spaces."""
    if not isinstance(value, str) or not value:
        return f"The {what} is required."
    if value != value.strip() or _CONTROL.search(value) or " " in value:
        return f"The {what} may not contain spaces or line breaks."
    return None


def required(settings: dict, name: str, what: str) -> str:
    """A setting the channel cannot send without: a permanent error when
    missing, since no retry will make it appear."""
    value = (settings or {}).get(name)
    if not value or not isinstance(value, str):
        raise TransportError(f"the channel has no {what}: edit its settings", permanent=True)
    return value


def combined(sent: list[Sent]) -> Sent:
    """One Sent for several requests: the last status, every answer."""
    if not sent:
        return Sent()
    return Sent(sent[-1].status, "\n".join(s.answer for s in sent if s.answer)[:2000])


def check_settings(transport: Transport) -> None:
    """Refuse to send with settings validate() rejects (edited past the form,
    say): a permanent error naming the field, instead of a request that
    cannot work or a header that http.client refuses."""
    errors = type(transport).validate(transport.config, transport.secrets)
    if errors:
        name, problem = next(iter(errors.items()))
        raise TransportError(f"the channel's {name} setting is wrong: {problem}", permanent=True)
