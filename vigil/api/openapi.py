"""The OpenAPI 3.1 document of Vigil's HTTP API, written by hand from the views.

Plain data rather than generated from code: the views are plain Django
functions, and what they accept and answer (field rules, status codes, the
three kinds of credentials) is easier to state than to infer. The tests keep
it honest: every API route must appear here with the methods it allows, and
real answers must validate against the schemas of their status codes.
"""

from __future__ import annotations

import copy
from importlib.metadata import PackageNotFoundError, version

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from vigil.api import openapi_ingest as ingest
from vigil.api import openapi_notify as notify
from vigil.api.auth import api_view
from vigil.api.openapi_components import (
    HEADERS,
    ID,
    MOMENT,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    json_body,
    json_request,
    obj,
    op,
    page,
    query_param,
    ref,
    response,
)

API_SECURITY = [{"session": []}, {"apiToken": []}, {"basicAuth": []}]
ID_PARAM = [{"$ref": "#/components/parameters/Id"}]
PAGE_PARAMS = [
    {"$ref": "#/components/parameters/Page"},
    {"$ref": "#/components/parameters/PerPage"},
]


def _read(op_id: str, summary: str, tag: str, ok: dict, **kw) -> dict:
    """An API read: 200, or 400 (a NUL in a parameter), 401."""
    responses = {"200": ok, "400": response("BadRequest"), "401": response("Unauthorized")}
    responses.update(kw.pop("more", {}))
    return op(op_id, summary, tag, responses, **kw)


def _write(op_id: str, summary: str, tag: str, ok: dict, status: str = "200", **kw) -> dict:
    """An API write: also 403 (permission, CSRF) and what reading the body may answer."""
    responses = {
        status: ok,
        "400": response("BadRequest"),
        "401": response("Unauthorized"),
        "403": response("Forbidden"),
    }
    if "body" in kw:
        responses["413"] = response("TooLarge")
    responses.update(kw.pop("more", {}))
    return op(op_id, summary, tag, dict(sorted(responses.items())), **kw)


QUERY_PARAMETERS = [
    query_param("metric", "Metric name (canonical or native).", {"type": "string"}, required=True),
    query_param(
        "server",
        "Server name; repeat for several (at most 1,000). Default: every server.",
        {"type": "array", "items": {"type": "string"}},
        style="form",
        explode=True,
    ),
    query_param("location", "Only the servers of this location.", {"type": "string"}),
    query_param(
        "match",
        "Label matcher (name=value, !=, =~, !~; regular expressions match the whole value); "
        "repeat it, all must hold.",
        {"type": "array", "items": {"type": "string"}},
        style="form",
        explode=True,
    ),
    query_param("start", "Default: an hour before end. " + MOMENT["description"], MOMENT),
    query_param("end", "Default: now. " + MOMENT["description"], MOMENT),
    query_param(
        "max_points",
        "At most this many points per series.",
        {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 500},
    ),
    {
        "name": "labels",
        "in": "query",
        "description": "Any other parameter is an equality matcher: mountpoint=/ is "
        "match=mountpoint=/.",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
]

ALERT_DETAIL = {
    **SCHEMAS["Alert"],
    "properties": {
        **SCHEMAS["Alert"]["properties"],
        "events": {
            "type": "array",
            "items": ref("AlertEvent"),
            "maxItems": 500,
            "description": "Newest first.",
        },
    },
    "required": [*SCHEMAS["Alert"]["required"], "events"],
}

PATHS: dict = {
    "/api/v1/openapi.json": {
        "get": op(
            "openapi",
            "This document",
            "meta",
            {
                "200": json_body("The OpenAPI 3.1 document.", {"type": "object"}),
                "401": response("Unauthorized"),
            },
        )
    },
    "/api/v1/query": {
        "get": op(
            "query",
            "Samples of one metric over a time range",
            "query",
            {
                "200": json_body(
                    "At most max_points points per series, from the finest tier that serves "
                    "the range.",
                    ref("QueryResult"),
                ),
                "400": json_body(
                    "A malformed parameter, or more than 1,000 matching series.", ref("Error")
                ),
                "401": response("Unauthorized"),
            },
            parameters=QUERY_PARAMETERS,
        )
    },
    "/api/v1/servers": {
        "get": op(
            "listServers",
            "Servers with their location, tags, status and last report",
            "servers",
            {
                "200": json_body(
                    "Every server, by name.",
                    obj({"servers": {"type": "array", "items": ref("Server")}}),
                ),
                "401": response("Unauthorized"),
            },
        )
    },
    "/api/v1/rules": {
        "get": _read(
            "listRules",
            "Every rule, by name",
            "rules",
            json_body("The rules.", obj({"rules": {"type": "array", "items": ref("Rule")}})),
        ),
        "post": _write(
            "createRule",
            "Create a rule (needs alerts.add_rule)",
            "rules",
            json_body("The new rule.", ref("Rule")),
            status="201",
            body=json_request({**ref("RuleInput"), "required": ["name"]}),
            more={"409": response("Conflict")},
        ),
    },
    "/api/v1/rules/backtest": {
        "post": _write(
            "backtestRule",
            "How often a rule would have fired over the last days (needs alerts.add_rule)",
            "rules",
            json_body("The replay; nothing is saved.", ref("BacktestResult")),
            body=json_request(ref("BacktestInput")),
            description="A rule matching more than 2,000 series is a 400.",
        )
    },
    "/api/v1/rules/{pk}": {
        "get": _read(
            "getRule",
            "One rule",
            "rules",
            json_body("The rule.", ref("Rule")),
            parameters=ID_PARAM,
            more={"404": response("NotFound")},
        ),
        "put": _write(
            "replaceRule",
            "Replace a rule: fields not sent take their defaults (needs alerts.change_rule)",
            "rules",
            json_body("The rule.", ref("Rule")),
            parameters=ID_PARAM,
            body=json_request({**ref("RuleInput"), "required": ["name"]}),
            more={"404": response("NotFound"), "409": response("Conflict")},
        ),
        "patch": _write(
            "updateRule",
            "Change the fields sent (needs alerts.change_rule)",
            "rules",
            json_body("The rule.", ref("Rule")),
            parameters=ID_PARAM,
            body=json_request(ref("RuleInput")),
            more={"404": response("NotFound"), "409": response("Conflict")},
        ),
        "delete": _write(
            "deleteRule",
            "Delete a rule, its alerts and their history (needs alerts.delete_rule)",
            "rules",
            {"description": "Deleted."},
            status="204",
            parameters=ID_PARAM,
            more={"404": response("NotFound")},
        ),
    },
    "/api/v1/alerts": {
        "get": _read(
            "listAlerts",
            "Alerts, most recently changed first, a page at a time",
            "alerts",
            json_body("One page.", page("alerts", "Alert")),
            parameters=[
                query_param(
                    "state",
                    "live: pending and firing; firing: needs someone (not acknowledged, "
                    "silenced or suppressed); all: also ok and gone.",
                    {
                        "enum": ["live", "firing", "pending", "acknowledged", "silenced", "all"],
                        "default": "live",
                    },
                ),
                query_param("server", "The server's name.", {"type": "string"}),
                query_param("rule", "The rule's id.", ID),
                *PAGE_PARAMS,
            ],
            more={"404": response("NotFound")},
        )
    },
    "/api/v1/alerts/{pk}": {
        "get": _read(
            "getAlert",
            "One alert with its last 500 events",
            "alerts",
            json_body("The alert.", ALERT_DETAIL),
            parameters=ID_PARAM,
            more={"404": response("NotFound")},
        )
    },
    "/api/v1/alerts/{pk}/acknowledge": {
        "post": _write(
            "acknowledgeAlert",
            "Acknowledge a firing alert (needs alerts.change_alert)",
            "alerts",
            json_body("The alert.", ref("Alert")),
            parameters=ID_PARAM,
            body=json_request(ref("AcknowledgeInput")),
            more={
                "404": response("NotFound"),
                "409": json_body(
                    "The alert is not firing, or is acknowledged already.", ref("Error")
                ),
            },
        )
    },
    "/api/v1/silences": {
        "get": _read(
            "listSilences",
            "Current and upcoming silences, a page at a time",
            "silences",
            json_body("One page.", page("silences", "Silence")),
            parameters=[
                query_param("expired", "1 or true: also the ended ones.", {"type": "string"}),
                *PAGE_PARAMS,
            ],
            more={"404": response("NotFound")},
        ),
        "post": _write(
            "createSilence",
            "Create a silence (needs alerts.add_silence)",
            "silences",
            json_body("The new silence.", ref("Silence")),
            status="201",
            body=json_request(ref("SilenceInput")),
            more={"409": response("Conflict")},
        ),
    },
    "/api/v1/silences/{pk}": {
        "get": _read(
            "getSilence",
            "One silence",
            "silences",
            json_body("The silence.", ref("Silence")),
            parameters=ID_PARAM,
            more={"404": response("NotFound")},
        ),
        "delete": _write(
            "expireSilence",
            "End a silence now; it stays listed with expired=1 (needs alerts.delete_silence)",
            "silences",
            json_body("The ended silence.", ref("Silence")),
            parameters=ID_PARAM,
            more={"404": response("NotFound")},
        ),
    },
    "/api/v1/notifications": {
        "get": _read(
            "listNotifications",
            "The notification queue, newest first",
            "notifications",
            json_body("One page.", page("notifications", "Notification")),
            parameters=PAGE_PARAMS,
            more={"404": response("NotFound")},
        )
    },
    "/healthz": {
        "get": op(
            "healthz",
            "Whether the app and its database answer",
            "meta",
            {
                "200": json_body("Healthy.", ref("Health")),
                "503": json_body("The database does not answer.", ref("Health")),
            },
            security=[],
        )
    },
    "/metrics": {
        "get": op(
            "metrics",
            "Vigil's own metrics for Prometheus",
            "meta",
            {
                "200": {
                    "description": "Prometheus text format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": response("Unauthorized"),
            },
        )
    },
}


def _version() -> str:
    try:
        return version("vigil")
    except PackageNotFoundError:
        return "unknown"


def schema() -> dict:
    """The whole document; a new dict each call, so callers may change it."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil",
            "version": _version(),
            "description": "Server monitoring: ingest, queries, alert rules, alerts, silences "
            'and notifications. API errors answer `{"error": ...}` with a 4xx status; a '
            "method an endpoint does not take answers 405 with `Allow`. Times in answers are "
            "ISO 8601 in UTC; times in requests may also be unix seconds.",
        },
        "security": API_SECURITY,
        "tags": [
            {"name": name}
            for name in (
                "query",
                "servers",
                "rules",
                "alerts",
                "silences",
                "notifications",
                "channels",
                "routes",
                "deliveries",
                "ingest",
                "influx",
                "meta",
            )
        ],
        "paths": copy.deepcopy({**PATHS, **notify.PATHS, **ingest.PATHS}),
        "components": copy.deepcopy(
            {
                "schemas": {**SCHEMAS, **notify.SCHEMAS, **ingest.SCHEMAS},
                "parameters": {**PARAMETERS, **ingest.PARAMETERS},
                "headers": {**HEADERS, **ingest.HEADERS},
                "responses": {**RESPONSES, **ingest.RESPONSES},
                "securitySchemes": _security_schemes(),
            }
        ),
    }


def _security_schemes() -> dict:
    return {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The browser session (log in at /login/). Writes must also send "
            "the CSRF token in X-CSRFToken.",
        },
        "apiToken": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Authorization: Token <api token>`: a user's API token "
            "(created in the admin, shown once).",
        },
        "basicAuth": {
            "type": "http",
            "scheme": "basic",
            "description": "A user's name and password.",
        },
        **ingest.security_schemes(),
    }


@api_view
@require_GET
def schema_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(schema())
