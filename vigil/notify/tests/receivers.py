"""Real HTTP receivers on 127.0.0.1 that play PagerDuty, Opsgenie, Slack,
Twilio and a webhook endpoint for the channels' tests.

Each receiver checks every request against what its provider documents
(method, path, authentication, and the body: jsonschema documents for the
JSON APIs, plain checks for Twilio's form), records it with the problems it
found, and answers as the provider does: its real success body, or the
provider's error when the request is wrong (PagerDuty's 400 "invalid event",
Opsgenie's 422, Slack's "invalid_payload", Twilio's error 21211...). A test
can script the next answers: a status with the provider's real error body
(429 with Retry-After, 500, 400), a slow answer, or stop the receiver to
play a closed port.

Documented shapes used here:
- PagerDuty Events API v2, POST /v2/enqueue: routing_key (32 characters),
  event_action trigger|acknowledge|resolve, dedup_key (at most 255),
  payload {summary (at most 1024), source, severity critical|error|warning|
  info, timestamp, component, group, class, custom_details}, images, links,
  client, client_url. Answers 202 {"status": "success", "message": "Event
  processed", "dedup_key": ...}.
- Opsgenie Alert API: POST /v2/alerts {message (at most 130), alias (512),
  description (15000), responders, visibleTo, actions, tags (20, 50 each),
  details (text values), entity (512), source (100), priority P1-P5, user
  (100), note (25000)}; POST /v2/alerts/{identifier}/acknowledge and /close
  ?identifierType=id|tiny|alias {user, source, note}; header
  "Authorization: GenieKey <key>". Answers 202 {"result": "Request will be
  processed", "took": ..., "requestId": ...}.
- Slack incoming webhooks: JSON with text, attachments or blocks; answers 200
  "ok", or a plain-text error code (invalid_payload, no_text,
  channel_not_found, rate_limited...). Text must escape &, < and >.
- Twilio Messages: POST /2010-04-01/Accounts/{AccountSid}/Messages.json,
  form-encoded To (E.164), From, Body (at most 1600 characters), HTTP basic
  auth with the account SID and auth token. Answers 201 with the message
  resource; errors are {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import orjson

from vigil.testing import free_port

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    doc: Any  # the JSON document or the form fields
    problems: list[str]
    status: int = 0
    answer: bytes = b""  # what the receiver answered
    at: float = 0.0

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0


def _json(doc: Any) -> bytes:
    return orjson.dumps(doc)


def _schema_problems(schema: dict, doc: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or "(body)"
        out.append(f"{where}: {error.message}")
    return out


def _timestamp_problems(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return [f"{where}: {value!r} is not an ISO 8601 timestamp"]
    return []


# --- Providers ------------------------------------------------------------------


class Provider:
    """What one API accepts and how it answers."""

    name = ""

    def parse(self, request: Request) -> None:
        try:
            request.doc = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            request.doc = None
            request.problems.append("the body is not JSON")

    def check(self, request: Request) -> None:
        raise NotImplementedError

    def success(self, request: Request) -> Answer:
        raise NotImplementedError

    def error(self, status: int, request: Request | None = None) -> Answer:
        raise NotImplementedError

    def refuse(self, request: Request) -> Answer:
        """The provider's answer to a request that breaks its documented shape."""
        return self.error(400, request)


PAGERDUTY_EVENT = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
        "images": {
            "type": "array",
            "items": {"type": "object", "required": ["src"]},
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href"],
                "properties": {"href": {"type": "string"}, "text": {"type": "string"}},
            },
        },
        "client": {"type": "string"},
        "client_url": {"type": "string"},
    },
    "allOf": [
        {
            "if": {"properties": {"event_action": {"const": "trigger"}}},
            "then": {"required": ["payload"]},
        },
        {
            "if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
            "then": {"required": ["dedup_key"]},
        },
    ],
}


class PagerDuty(Provider):
    name = "pagerduty"

    def __init__(self, routing_key: str | None = None) -> None:
        self.routing_key = routing_key

    def check(self, request: Request) -> None:
        if request.method != "POST" or request.path != "/v2/enqueue":
            request.problems.append(f"{request.method} {request.path} is not /v2/enqueue")
        if not request.header("content-type").startswith("application/json"):
            request.problems.append("the body is not sent as application/json")
        if request.doc is None:
            return
        request.problems += _schema_problems(PAGERDUTY_EVENT, request.doc)
        payload = request.doc.get("payload") if isinstance(request.doc, dict) else None
        if isinstance(payload, dict):
            request.problems += _timestamp_problems(payload.get("timestamp"), "payload/timestamp")
        if self.routing_key and request.doc.get("routing_key") != self.routing_key:
            request.problems.append("the routing key is not this integration's")

    def success(self, request: Request) -> Answer:
        key = request.doc.get("dedup_key") or uuid.uuid4().hex
        return Answer(
            202, _json({"status": "success", "message": "Event processed", "dedup_key": key})
        )

    def error(self, status: int, request: Request | None = None) -> Answer:
        if status == 400:
            problems = request.problems if request is not None else []
            return Answer(
                400,
                _json(
                    {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": problems or ["'payload.summary' is missing or blank"],
                    }
                ),
            )
        if status == 429:
            return Answer(
                429,
                _json(
                    {
                        "status": "throttle event",
                        "message": "Requests for this service are arriving too quickly. "
                        "Please retry later.",
                    }
                ),
            )
        return Answer(status, b"Internal Server Error", content_type="text/plain")


_TEXT = {"type": "string"}
OPSGENIE_CREATE = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 130},
        "alias": {"type": "string", "maxLength": 512},
        "description": {"type": "string", "maxLength": 15000},
        "responders": {"type": "array", "items": {"type": "object"}},
        "visibleTo": {"type": "array", "items": {"type": "object"}},
        "actions": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 50}},
        "tags": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 50}},
        "details": {"type": "object", "additionalProperties": _TEXT},
        "entity": {"type": "string", "maxLength": 512},
        "source": {"type": "string", "maxLength": 100},
        "priority": {"enum": ["P1", "P2", "P3", "P4", "P5"]},
        "user": {"type": "string", "maxLength": 100},
        "note": {"type": "string", "maxLength": 25000},
    },
}
OPSGENIE_ACTION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "user": {"type": "string", "maxLength": 100},
        "source": {"type": "string", "maxLength": 100},
        "note": {"type": "string", "maxLength": 25000},
    },
}
_OPSGENIE_ACTION_PATH = re.compile(r"^/v2/alerts/([^/]+)/(acknowledge|close)$")


class Opsgenie(Provider):
    name = "opsgenie"

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key

    def check(self, request: Request) -> None:
        if request.method != "POST":
            request.problems.append(f"{request.method} instead of POST")
        if not request.header("content-type").startswith("application/json"):
            request.problems.append("the body is not sent as application/json")
        if request.doc is None:
            return
        if request.path == "/v2/alerts":
            request.problems += _schema_problems(OPSGENIE_CREATE, request.doc)
            details = request.doc.get("details") or {}
            if sum(len(k) + len(str(v)) for k, v in details.items()) > 8000:
                request.problems.append("details: more than 8000 characters")
        elif match := _OPSGENIE_ACTION_PATH.match(request.path):
            request.problems += _schema_problems(OPSGENIE_ACTION, request.doc)
            kind = request.query.get("identifierType", ["id"])
            if kind != ["alias"]:
                request.problems.append(f"identifierType is {kind}, expected alias")
            if len(match.group(1)) > 512:
                request.problems.append("the alias in the path is longer than 512 characters")
        else:
            request.problems.append(f"no such endpoint: {request.path}")

    def authorized(self, request: Request) -> bool:
        return self.api_key is None or request.header("authorization") == (
            f"GenieKey {self.api_key}"
        )

    def _tail(self) -> dict:
        return {
            "took": round(0.001 + secrets.randbelow(300) / 1000, 3),
            "requestId": str(uuid.uuid4()),
        }

    def success(self, request: Request) -> Answer:
        return Answer(202, _json({"result": "Request will be processed", **self._tail()}))

    def error(self, status: int, request: Request | None = None) -> Answer:
        messages = {
            401: "Could not authenticate",
            429: "You are making too many requests! To avoid errors, we recommend you limit "
            "requests.",
            500: "Internal Server Error",
        }
        if status in (400, 422):
            problems = (request.problems if request is not None else []) or ["message: required"]
            errors = {p.split(":", 1)[0]: p.split(":", 1)[-1].strip() for p in problems}
            return Answer(
                status,
                _json(
                    {
                        "message": "Request body is not processable. Please check the errors.",
                        "errors": errors,
                        **self._tail(),
                    }
                ),
            )
        return Answer(status, _json({"message": messages.get(status, "Error"), **self._tail()}))

    def refuse(self, request: Request) -> Answer:
        return self.error(422, request)  # Opsgenie's "semantically invalid request"


class Slack(Provider):
    name = "slack"
    # Legacy attachment colours, or a hex colour.
    COLOUR = re.compile(r"^(good|warning|danger|#[0-9a-fA-F]{6})$")
    # Slack's own escapes are the only entities text may hold.
    _STRAY = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")
    SCHEMA = {
        "type": "object",
        "anyOf": [{"required": ["text"]}, {"required": ["attachments"]}, {"required": ["blocks"]}],
        "properties": {
            "text": {"type": "string", "maxLength": 40000},
            "attachments": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "fallback": _TEXT,
                        "color": _TEXT,
                        "title": _TEXT,
                        "title_link": _TEXT,
                        "text": _TEXT,
                        "footer": _TEXT,
                        "ts": {"type": "integer"},
                        "mrkdwn_in": {"type": "array", "items": _TEXT},
                        "fields": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["title", "value"],
                                "properties": {"title": _TEXT, "value": _TEXT},
                            },
                        },
                    },
                },
            },
            "blocks": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
        },
    }

    def check(self, request: Request) -> None:
        if request.method != "POST":
            request.problems.append(f"{request.method} instead of POST")
        if request.doc is None:
            return
        request.problems += _schema_problems(self.SCHEMA, request.doc)
        if not isinstance(request.doc, dict):
            return
        texts = [("text", request.doc.get("text"))]
        for n, attachment in enumerate(request.doc.get("attachments") or []):
            if not isinstance(attachment, dict):
                continue
            for name in ("fallback", "title", "text", "footer", "pretext"):
                texts.append((f"attachments/{n}/{name}", attachment.get(name)))
            colour = attachment.get("color")
            if colour is not None and not self.COLOUR.match(str(colour)):
                request.problems.append(f"attachments/{n}/color: {colour!r} is not a colour")
        for where, text in texts:
            if isinstance(text, str) and self._STRAY.search(text):
                request.problems.append(f"{where}: unescaped &, < or > in {text[:80]!r}")

    def success(self, request: Request) -> Answer:
        return Answer(200, b"ok", content_type="text/html")

    def error(self, status: int, request: Request | None = None) -> Answer:
        codes = {
            400: "invalid_payload",
            403: "action_prohibited",
            404: "channel_not_found",
            410: "channel_is_archived",
            429: "rate_limited",
            500: "rollup_error",
        }
        return Answer(status, codes.get(status, "error").encode(), content_type="text/html")


class Twilio(Provider):
    name = "twilio"
    FIELDS = {"To", "From", "Body", "MessagingServiceSid", "StatusCallback", "MediaUrl"}
    PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token

    def parse(self, request: Request) -> None:
        if not request.header("content-type").startswith("application/x-www-form-urlencoded"):
            request.problems.append("the body is not sent as application/x-www-form-urlencoded")
        try:
            fields = parse_qs(request.body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            request.doc = None
            request.problems.append("the body is not a form")
            return
        request.doc = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}

    def check(self, request: Request) -> None:
        match = self.PATH.match(request.path)
        if request.method != "POST" or not match:
            request.problems.append(f"{request.method} {request.path} is not a Messages list")
        elif match.group(1) != self.account_sid:
            request.problems.append("the account in the path is not the authenticated one")
        if request.doc is None:
            return
        doc = request.doc
        if unknown := set(doc) - self.FIELDS:
            request.problems.append(f"unknown parameters {sorted(unknown)}")
        if not E164.match(str(doc.get("To", ""))):
            request.problems.append(f"To: {doc.get('To')!r} is not an E.164 number")
        if not doc.get("From") and not doc.get("MessagingServiceSid"):
            request.problems.append("From: required")
        body = doc.get("Body")
        if not isinstance(body, str) or not body:
            request.problems.append("Body: required")
        elif len(body) > 1600:
            request.problems.append("Body: longer than 1600 characters")

    def authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.header("authorization") == f"Basic {expected}"

    def success(self, request: Request) -> Answer:
        from vigil.notify.channels.sms import segments

        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return Answer(
            201,
            _json(
                {
                    "account_sid": self.account_sid,
                    "api_version": "2010-04-01",
                    "body": request.doc["Body"],
                    "date_created": now,
                    "date_sent": None,
                    "date_updated": now,
                    "direction": "outbound-api",
                    "error_code": None,
                    "error_message": None,
                    "from": request.doc["From"],
                    "messaging_service_sid": None,
                    "num_media": "0",
                    "num_segments": str(segments(request.doc["Body"])),
                    "price": None,
                    "price_unit": "USD",
                    "sid": sid,
                    "status": "queued",
                    "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
                    "to": request.doc["To"],
                    "uri": uri,
                }
            ),
        )

    def error(self, status: int, request: Request | None = None) -> Answer:
        code, message = {
            400: (21211, "Invalid 'To' Phone Number"),
            401: (20003, "Authenticate"),
            404: (20404, "The requested resource was not found"),
            429: (20429, "Too Many Requests"),
            500: (20500, "Internal Server Error"),
            503: (20503, "Service Unavailable"),
        }.get(status, (20500, "Internal Server Error"))
        if status == 400 and request is not None and request.problems:
            problem = request.problems[0]
            if problem.startswith("Body"):
                code, message = 21602, "Message body is required."
            elif not problem.startswith("To"):
                code, message = 21604, problem
        return Answer(
            status,
            _json(
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                }
            ),
        )


WEBHOOK_PAYLOAD = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "version",
        "delivery",
        "kind",
        "test",
        "title",
        "severity",
        "rule",
        "link",
        "created",
        "items",
    ],
    "properties": {
        "version": {"const": 1},
        "delivery": {"type": "string", "format": "uuid"},
        "kind": {
            "enum": ["firing", "resolved", "repeat", "acknowledged", "flapping", "gone", "test"]
        },
        "test": {"type": "boolean"},
        "title": _TEXT,
        "severity": {"enum": ["critical", "warning", "info"]},
        "rule": _TEXT,
        "link": _TEXT,
        "created": _TEXT,
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["alert", "key", "rule", "severity", "server", "location"],
                "properties": {
                    "alert": {"type": ["integer", "null"]},
                    "key": {"type": ["string", "null"]},
                    "rule": _TEXT,
                    "severity": {"enum": ["critical", "warning", "info"]},
                    "server": _TEXT,
                    "location": _TEXT,
                    "labels": {"type": ["object", "null"], "additionalProperties": _TEXT},
                    "value": {"type": ["number", "null"]},
                    "description": {"type": ["string", "null"]},
                    "fired_at": {"type": ["string", "null"]},
                    "resolved_at": {"type": ["string", "null"]},
                    "predicted_at": {"type": ["string", "null"]},
                    "acknowledged_by": {"type": ["string", "null"]},
                    "comment": {"type": ["string", "null"]},
                },
            },
        },
    },
}


class Webhook(Provider):
    """Vigil's own webhook, as docs/webhooks.md documents it."""

    name = "webhook"

    def __init__(self, secret: str = "", tolerance: float = 300) -> None:
        self.secret = secret
        self.tolerance = tolerance

    def check(self, request: Request) -> None:
        if request.method != "POST":
            request.problems.append(f"{request.method} instead of POST")
        if request.header("content-type") != "application/json":
            request.problems.append("the body is not sent as application/json")
        if request.doc is None:
            return
        request.problems += _schema_problems(WEBHOOK_PAYLOAD, request.doc)
        doc = request.doc if isinstance(request.doc, dict) else {}
        try:
            uuid.UUID(request.header("x-vigil-delivery"))
        except ValueError:
            request.problems.append("X-Vigil-Delivery is not a UUID")
        if request.header("x-vigil-delivery") != doc.get("delivery"):
            request.problems.append("X-Vigil-Delivery differs from the body's delivery")
        if request.header("x-vigil-event") != doc.get("kind"):
            request.problems.append("X-Vigil-Event differs from the body's kind")
        stamp = request.header("x-vigil-timestamp")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.tolerance:
            request.problems.append("X-Vigil-Timestamp is missing or too far from now")
        for name in ("created",):
            request.problems += _timestamp_problems(doc.get(name), name)
        if self.secret and not self.verified(request):
            request.problems.append("X-Vigil-Signature does not match")

    def verified(self, request: Request) -> bool:
        """The check docs/webhooks.md tells receivers to make."""
        signed = request.header("x-vigil-timestamp").encode() + b"." + request.body
        expected = "sha256=" + hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, request.header("x-vigil-signature"))

    def success(self, request: Request) -> Answer:
        return Answer(200, _json({"received": request.header("x-vigil-delivery")}))

    def refuse(self, request: Request) -> Answer:
        return Answer(400, _json({"errors": request.problems}))

    def error(self, status: int, request: Request | None = None) -> Answer:
        return Answer(status, _json({"error": f"scripted {status}"}))


# --- The server -----------------------------------------------------------------


class Receiver:
    """One provider's API on 127.0.0.1, recording what it receives."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.port = 0
        self.requests: list[Request] = []
        self._script: deque[tuple[int, dict[str, str], float, bytes | None]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def then(
        self,
        status: int,
        *,
        times: int = 1,
        delay: float = 0.0,
        body: bytes | None = None,
        **headers: str,
    ) -> None:
        """Answer the next `times` requests with `status` (the provider's own
        error body unless `body` is given), after `delay` seconds."""
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        with self._lock:
            for _ in range(times):
                self._script.append((status, named, delay, body))

    def problems(self) -> list[str]:
        """Every problem found in every request, prefixed by its number."""
        with self._lock:
            return [f"#{n}: {p}" for n, r in enumerate(self.requests) for p in r.problems]

    def docs(self) -> list[Any]:
        with self._lock:
            return [r.doc for r in self.requests]

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            status, headers, delay, body = scripted
            if 200 <= status < 300:
                answer = self.provider.success(request)
                answer.status = status
            else:
                answer = self.provider.error(status, request)
            if body is not None:
                answer.body = body
            answer.headers.update(headers)
            answer.delay = delay
            return answer
        authorized = getattr(self.provider, "authorized", None)
        if authorized is not None and not authorized(request):
            return self.provider.error(401, request)
        if request.problems:
            return self.provider.refuse(request)
        return self.provider.success(request)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length),
            doc=None,
            problems=[],
            at=time.monotonic(),
        )
        self.provider.parse(request)
        self.provider.check(request)
        answer = self._answer(request)
        request.status, request.answer = answer.status, answer.body
        with self._lock:
            self.requests.append(request)
        if answer.delay:
            time.sleep(answer.delay)
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", answer.content_type)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)
        except OSError:
            pass  # the client gave up waiting (a timeout test)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            def do_GET(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def running(provider: Provider) -> Iterator[Receiver]:
    receiver = Receiver(provider).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def closed_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connection refused."""
    return f"http://127.0.0.1:{free_port()}"
