"""The flow every ingest endpoint shares: auth, read, parse, resolve, write.

Endpoints differ only in their parser and in how they word an answer, so the
flow returns an Outcome and each view renders it in its protocol's shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, OperationalError
from django.http import HttpRequest
from django.utils import timezone

from vigil.ingest import writer
from vigil.ingest.auth import authenticate, needs_touch
from vigil.ingest.body import BodyError, read_body
from vigil.ingest.parsers.base import ParseError, ParseResult
from vigil.lib import stats

log = logging.getLogger(__name__)

Parser = Callable[[bytes, float], ParseResult]


@dataclass
class Outcome:
    status: int
    message: str = ""
    written: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def _unavailable(message: str) -> Outcome:
    retry = str(settings.INGEST_RETRY_AFTER_SECONDS)
    return Outcome(503, message, headers={"Retry-After": retry})


def ingest(request: HttpRequest, parse: Parser, derive: writer.Deriver | None = None) -> Outcome:
    """Run one ingest request; never raises for anything a client can send.

    `derive` maps the protocol's native series to the canonical metrics.
    """
    outcome = _ingest(request, parse, derive)
    endpoint = request.resolver_match.url_name if request.resolver_match else request.path
    stats.incr("vigil_ingest_requests_total", endpoint=endpoint, status=str(outcome.status))
    if outcome.written:
        stats.incr("vigil_ingest_samples_written_total", outcome.written)
    if outcome.rejected:
        stats.incr("vigil_ingest_samples_rejected_total", outcome.rejected)
    return outcome


def _ingest(request: HttpRequest, parse: Parser, derive: writer.Deriver | None) -> Outcome:
    try:
        token = authenticate(request)
    except OperationalError as exc:
        log.warning("ingest: database unavailable: %s", exc)
        return _unavailable("the database is unavailable; retry later")
    if token is None:
        return Outcome(
            401,
            "a valid ingest token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": 'Basic realm="Vigil ingest"'},
        )
    try:
        body = read_body(request, settings.INGEST_MAX_BODY_BYTES, settings.INGEST_MAX_DECODED_BYTES)
        result = parse(body, time.time())
    except BodyError as exc:
        return Outcome(exc.status, str(exc))
    except ParseError as exc:
        return Outcome(400, str(exc))

    items: list[writer.Item] = []
    if token.server is not None:
        wrong = {sp.host for sp in result.series if sp.host not in (None, token.server.host_name)}
        if wrong:
            return Outcome(
                403,
                f"this token is bound to server {token.server.name!r} and cannot write "
                f"for host {sorted(wrong)[0]!r}",
            )
        items = [(token.server.pk, sp) for sp in result.series]
    else:
        no_host = [sp for sp in result.series if sp.host is None]
        if no_host:
            result.reject(
                "a host name is required with a token that is not bound to a server",
                sum(len(sp.timestamps) for sp in no_host),
            )
        with_host = [sp for sp in result.series if sp.host is not None]
        try:
            server_ids = writer.server_ids_for_hosts({sp.host for sp in with_host})
        except writer.UnknownServers as exc:
            return Outcome(409, str(exc))
        except OperationalError as exc:
            log.warning("ingest: database unavailable: %s", exc)
            return _unavailable("the database is unavailable; retry later")
        items = [(server_ids[sp.host], sp) for sp in with_host]

    rejected = None
    servers = {server_id for server_id, _ in items}
    if token.server is not None:
        servers.add(token.server.pk)
    if result.rejected and servers and result.errors:
        rejected = writer.Rejected(frozenset(servers), result.rejected, result.errors[0])
    written = 0
    if items or rejected:
        try:
            touch = None
            if needs_touch(token):
                touch = token.pk
                # The cached token object remembers it too: one refresh a minute.
                token.last_used = timezone.now()
            written = writer.write(items, touch_token=touch, derive=derive, rejected=rejected)
        except writer.Overloaded as exc:
            return _unavailable(f"ingest is overloaded ({exc}); retry later")
        except DatabaseError as exc:
            log.warning("ingest: write failed: %s", exc)
            return _unavailable("the database could not store the samples; retry later")
    if result.errors:
        return Outcome(
            400,
            f"partial write: {result.errors[0]}",
            written=written,
            rejected=result.rejected,
            errors=result.errors,
        )
    return Outcome(204, written=written)
