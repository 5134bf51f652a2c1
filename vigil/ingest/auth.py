"""Ingest credentials: Bearer, Token or HTTP basic auth with the token as password.

Telegraf and collectd can only send basic auth, so the token may come as the
password (any user name), or as the user name with an empty password.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time

from django.http import HttpRequest
from django.utils import timezone

from vigil.lib.tokens import hash_token
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


# Valid tokens are remembered for a few seconds, which saves a query on every
# request of a busy agent; a token disabled in the admin stops working within
# TOKEN_CACHE_SECONDS on every web node.
TOKEN_CACHE_SECONDS = 10.0
TOKEN_CACHE_SIZE = 10_000
_token_cache: dict[str, tuple[float, IngestToken]] = {}
_token_lock = threading.Lock()


def clear_token_cache() -> None:
    with _token_lock:
        _token_cache.clear()


def authenticate(request: HttpRequest) -> IngestToken | None:
    token = token_from_request(request)
    if not token or len(token) > 200:
        return None
    key = hash_token(token)
    now = time.monotonic()
    with _token_lock:
        cached = _token_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = IngestToken.objects.filter(token_hash=key).select_related("server").first()
    if found is None or not found.enabled:
        return None
    with _token_lock:
        if len(_token_cache) >= TOKEN_CACHE_SIZE:
            _token_cache.clear()
        _token_cache[key] = (now + TOKEN_CACHE_SECONDS, found)
    return found


def needs_touch(token: IngestToken) -> bool:
    """Whether last_used is stale; it is refreshed at most once a minute, by the writer."""
    return token.last_used is None or (timezone.now() - token.last_used).total_seconds() > 60
