"""API authentication: the browser session, `Token <api token>`, or basic auth."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_not_required
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from vigil.api.models import ApiToken
from vigil.lib.tokens import hash_token

log = logging.getLogger(__name__)


TOUCH_EVERY = timedelta(minutes=1)


def _touch(token: ApiToken) -> None:
    """Record when a token was last used, at most once a minute: a read must not
    queue for the database's write lock on every request (SQLite has one)."""
    now = timezone.now()
    if token.last_used and now - token.last_used < TOUCH_EVERY:
        return
    try:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    except OperationalError:
        log.warning("API token %s: last use not recorded (database busy)", token.prefix)


def _user_from_header(request: HttpRequest):
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "token" and value and len(value) <= 200:
        token = ApiToken.objects.filter(token_hash=hash_token(value)).select_related("user").first()
        if token is None or not token.user.is_active:
            return None
        _touch(token)
        return token.user
    if scheme == "basic" and value:
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return authenticate(request, username=username, password=password)
    return None


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answers 401 with JSON (not a login redirect) to a request without credentials."""

    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            user = _user_from_header(request)
            if user is None:
                response = JsonResponse(
                    {
                        "error": "authentication required: log in, or send "
                        "'Authorization: Token <api token>' or basic auth"
                    },
                    status=401,
                )
                response["WWW-Authenticate"] = 'Basic realm="Vigil API"'
                return response
            request.user = user
        return view(request, *args, **kwargs)

    return wrapper
