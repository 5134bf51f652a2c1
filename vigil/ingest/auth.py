"""Ingest credentials: Bearer, Token or HTTP basic auth with the token as password.

Telegraf and collectd can only send basic auth, so the token may come as the
password (any user name), or as the user name with an empty password.
"""

from __future__ import annotations

import base64
import binascii

from django.http import HttpRequest
from django.utils import timezone

from vigil.servers.models import IngestToken


def token_from_request(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        # InfluxDB 1.x clients may send the credentials as ?u=<user>&p=<password>.
        return request.GET.get("p") or request.GET.get("u") or None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme in ("bearer", "token") and value:
        return value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


def authenticate(request: HttpRequest) -> IngestToken | None:
    token = token_from_request(request)
    if not token or len(token) > 200:
        return None
    found = IngestToken.objects.find(token)
    if found is None or not found.enabled:
        return None
    return found


def needs_touch(token: IngestToken) -> bool:
    """Whether last_used is stale; it is refreshed at most once a minute, by the writer."""
    return token.last_used is None or (timezone.now() - token.last_used).total_seconds() > 60
