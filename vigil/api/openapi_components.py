"""Building blocks of the OpenAPI document (vigil.api.openapi): small
constructors, and the components of the REST API (rules, alerts, silences,
notifications, queries, errors) written from vigil.alerts.serialize and the
views."""

from __future__ import annotations

# --- Building blocks ----------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def response(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def json_body(description: str, schema: dict, headers: dict | None = None) -> dict:
    out: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def header(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def nullable(kind: str, **extra: object) -> dict:
    return {"type": [kind, "null"], **extra}


def obj(properties: dict, required: list[str] | None = None, **extra: object) -> dict:
    """An object schema; by default every property is always present."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def page(key: str, item: str) -> dict:
    return obj(
        {
            "count": {"type": "integer", "minimum": 0, "description": "Items in all pages."},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 0},
            key: {"type": "array", "items": ref(item)},
        }
    )


TIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
NULLABLE_TIME = nullable("string", format="date-time", description="ISO 8601, UTC.")
ID = {"type": "integer", "minimum": 1}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
MOMENT = {
    "type": ["number", "string"],
    "description": "Unix seconds, or ISO 8601 text (UTC when no zone is given).",
}
POINT = {
    "type": "array",
    "prefixItems": [
        {"type": "integer", "description": "Unix seconds."},
        {"type": "number", "description": "The value (an average for a bucket)."},
    ],
    "minItems": 2,
    "maxItems": 2,
}
COUNT = {"type": "integer", "minimum": 0, "maximum": 2_147_483_647}


def reference(what: str) -> dict:
    return nullable("integer", minimum=1, description=f"The id of a {what}, or null.")


# --- Schemas ------------------------------------------------------------------

RULE_FIELDS: dict = {
    "name": {"type": "string", "maxLength": 200, "description": "Unique among rules."},
    "enabled": {"type": "boolean", "default": True},
    "severity": {"enum": ["info", "warning", "critical"], "default": "warning"},
    "kind": {
        "enum": ["threshold", "rate", "forecast", "no_data", "host_down"],
        "default": "threshold",
    },
    "metric": {
        "type": "string",
        "maxLength": 200,
        "description": "Canonical or native metric name (`up` for host_down, set by itself).",
    },
    "matchers": {
        "type": "string",
        "maxLength": 10_000,
        "default": "",
        "description": "Label matchers, one per line or separated by commas: "
        "`mountpoint=/`, `device!~loop.*`.",
    },
    "scope": {"enum": ["all", "location", "tag", "group", "server"], "default": "all"},
    "location": reference("location (scope location)"),
    "tag": reference("tag (scope tag)"),
    "group": reference("server group (scope group)"),
    "server": reference("server (scope server)"),
    "aggregation": {
        "type": "string",
        "pattern": "^(last|avg|min|max|p(0{0,2}[0-9]|0?[1-9][0-9]|100))$",
        "default": "last",
        "description": "last, avg, min, max, or a percentile p0 to p100.",
    },
    "window_seconds": {**COUNT, "default": 300},
    "operator": {"enum": [">", ">=", "<", "<=", ""], "default": ">"},
    "threshold": nullable("number"),
    "recovery_threshold": nullable(
        "number", description="Resolve only past this value; null: as soon as the breach ends."
    ),
    "per_core": {"type": "boolean", "default": False},
    "forecast_seconds": {**COUNT, "default": 86_400},
    "no_data_seconds": {**COUNT, "default": 600},
    "for_seconds": {**COUNT, "default": 0},
    "for_evaluations": {**COUNT, "default": 1},
    "repeat_seconds": {**COUNT, "default": 14_400, "description": "0: never remind."},
    "description": {
        "type": "string",
        "maxLength": 10_000,
        "description": "Template with {server}, {location}, {metric}, {value}, {threshold}, "
        "{labels}, {label:NAME}, {predicted}.",
    },
}

SILENCE_FIELDS: dict = {
    "comment": {"type": "string", "maxLength": 500},
    "server": reference("server"),
    "location": reference("location"),
    "tag": reference("tag"),
    "rule": reference("rule"),
    "matchers": {"type": "string", "maxLength": 10_000, "description": "Label matchers."},
    "until_resolved": reference("alert: muted until it resolves"),
    "starts_at": {**MOMENT, "description": "Default: now. " + MOMENT["description"]},
    "ends_at": {
        "type": ["number", "string", "null"],
        "description": "Null only with until_resolved. " + MOMENT["description"],
    },
    "weekdays": {
        "type": "string",
        "maxLength": 20,
        "description": 'Weekly window: days, Monday is 0 ("5,6").',
    },
    "window_start": nullable("string", maxLength=20, description='Weekly window start ("22:00").'),
    "window_minutes": {**COUNT, "description": "Length of the weekly window."},
}

SCHEMAS: dict = {
    "Error": obj({"error": {"type": "string", "description": "What is wrong, and how to fix it."}}),
    "ValidationError": obj(
        {
            "error": {"type": "string"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "The messages of each refused field (`body` for the whole).",
            },
        },
        required=["error"],
    ),
    "Rule": obj(
        {
            "id": ID,
            **RULE_FIELDS,
            "is_default": {"type": "boolean"},
            "created": TIME,
            "updated": TIME,
            "last_evaluated": NULLABLE_TIME,
            "last_error": {"type": "string", "description": "Why the last evaluation failed."},
        }
    ),
    "RuleInput": {
        "type": "object",
        "properties": RULE_FIELDS,
        "additionalProperties": False,
        "description": "Unknown fields are refused. Numbers must be JSON numbers.",
    },
    "BacktestInput": {
        "type": "object",
        "properties": {
            **RULE_FIELDS,
            "name": {"type": "string", "maxLength": 200, "description": "Optional."},
            "days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 7},
        },
        "additionalProperties": False,
    },
    "BacktestResult": obj(
        {
            "fired": {"type": "integer", "minimum": 0, "description": "Firing episodes."},
            "series": {"type": "integer", "minimum": 0, "description": "Series evaluated."},
            "step": {"type": "integer", "minimum": 1, "description": "Seconds per evaluation."},
            "seconds": {"type": "number", "description": "Time the backtest took."},
            "episodes": {
                "type": "array",
                "maxItems": 1000,
                "items": obj(
                    {
                        "server": {"type": "string"},
                        "labels": LABELS,
                        "fired_at": {"type": "integer", "description": "Unix seconds."},
                        "resolved_at": nullable("integer", description="Null: still firing."),
                        "value": nullable("number"),
                    }
                ),
            },
            "charts": {
                "type": "array",
                "maxItems": 5,
                "items": obj(
                    {
                        "server": {"type": "string"},
                        "labels": LABELS,
                        "points": {"type": "array", "items": POINT},
                    }
                ),
            },
        }
    ),
    "Alert": obj(
        {
            "id": ID,
            "rule": obj(
                {
                    "id": ID,
                    "name": {"type": "string"},
                    "severity": RULE_FIELDS["severity"],
                }
            ),
            "server": nullable(
                "object",
                properties={"id": ID, "name": {"type": "string"}},
                required=["id", "name"],
            ),
            "location": nullable("string", description="The location's name."),
            "series": nullable("integer", description="The series' id."),
            "labels": LABELS,
            "state": {"enum": ["ok", "pending", "firing", "gone"]},
            "section": {
                "enum": ["ok", "pending", "firing", "acknowledged", "silenced", "gone"],
                "description": "Where the alerts page lists it.",
            },
            "description": {"type": "string"},
            "value": nullable("number"),
            "since": NULLABLE_TIME,
            "fired_at": NULLABLE_TIME,
            "resolved_at": NULLABLE_TIME,
            "changed_at": TIME,
            "predicted_at": NULLABLE_TIME,
            "silenced": {"type": "boolean"},
            "suppressed": {"type": "string", "description": "Why no one is told; empty if told."},
            "flapping": {"type": "boolean"},
            "acknowledged_by": nullable("string", description="A user name."),
            "acknowledged_at": NULLABLE_TIME,
            "ack_comment": {"type": "string"},
        }
    ),
    "AlertEvent": obj(
        {
            "id": ID,
            "kind": {
                "enum": [
                    "pending",
                    "firing",
                    "resolved",
                    "gone",
                    "acknowledged",
                    "flapping",
                    "settled",
                ]
            },
            "at": TIME,
            "value": nullable("number"),
            "text": {"type": "string"},
        }
    ),
    "AcknowledgeInput": {
        "type": "object",
        "properties": {"comment": {"type": "string", "maxLength": 2000}},
        "additionalProperties": False,
    },
    "Silence": obj(
        {
            "id": ID,
            "comment": {"type": "string"},
            "location": reference("location"),
            "rule": reference("rule"),
            "server": reference("server"),
            "tag": reference("tag"),
            "until_resolved": reference("alert"),
            "matchers": {"type": "string"},
            "starts_at": TIME,
            "ends_at": NULLABLE_TIME,
            "weekdays": {"type": "string"},
            "window_start": nullable("string", pattern=r"^\d{2}:\d{2}:\d{2}(\.\d+)?$"),
            "window_minutes": {"type": "integer", "minimum": 0},
            "active": {"type": "boolean", "description": "Muting right now."},
            "expired": {"type": "boolean"},
            "created_by": nullable("string", description="A user name."),
            "created": TIME,
        }
    ),
    "SilenceInput": {
        "type": "object",
        "properties": SILENCE_FIELDS,
        "additionalProperties": False,
        "description": "A silence mutes the alerts that match everything it sets.",
    },
    "NotificationItem": obj(
        {
            "alert": ID,
            "key": {"type": "string", "description": "Stable for one firing of one alert."},
            "rule": {"type": "string"},
            "metric": {"type": "string"},
            "severity": RULE_FIELDS["severity"],
            "server": {"type": "string"},
            "location": {"type": "string"},
            "labels": LABELS,
            "value": nullable("number"),
            "description": {"type": "string"},
            "fired_at": NULLABLE_TIME,
            "resolved_at": NULLABLE_TIME,
            "predicted_at": NULLABLE_TIME,
            "acknowledged_by": nullable("string"),
            "comment": {"type": "string"},
        },
        description="One alert as the channels receive it.",
    ),
    "Notification": obj(
        {
            "id": ID,
            "kind": {"enum": ["firing", "resolved", "repeat", "acknowledged", "flapping", "gone"]},
            "rule": obj({"id": ID, "name": {"type": "string"}}),
            "severity": RULE_FIELDS["severity"],
            "location": nullable("string"),
            "title": {"type": "string"},
            "items": {"type": "array", "items": ref("NotificationItem")},
            "alerts": {"type": "array", "items": ID},
            "created": TIME,
            "delivered_at": NULLABLE_TIME,
        }
    ),
    "QueryResult": obj(
        {
            "tier": {"enum": ["raw", "5m", "1h"], "description": "Where the points come from."},
            "step": {"type": "integer", "minimum": 1, "description": "Bucket width, seconds."},
            "series": {
                "type": "array",
                "items": obj(
                    {
                        "server": {"type": "string"},
                        "metric": {"type": "string"},
                        "labels": LABELS,
                        "points": {"type": "array", "items": POINT},
                        "min": {"type": "array", "items": {"type": "number"}},
                        "max": {"type": "array", "items": {"type": "number"}},
                    },
                    required=["server", "metric", "labels", "points"],
                ),
                "description": "min and max, one per point, come when a point stands for "
                "more than one sample.",
            },
        }
    ),
    "Server": obj(
        {
            "id": ID,
            "name": {"type": "string"},
            "host_name": {"type": "string"},
            "location": nullable("string"),
            "tags": {"type": "array", "items": {"type": "string"}},
            "status": {"enum": ["new", "up", "down", "retired"]},
            "last_seen": NULLABLE_TIME,
        }
    ),
    "Health": obj(
        {
            "status": {"enum": ["ok", "error"]},
            "database": {
                "type": "string",
                "description": "The database vendor (sqlite, postgresql), or unavailable.",
            },
        }
    ),
}

PARAMETERS = {
    "Id": {"name": "pk", "in": "path", "required": True, "schema": ID},
    "Page": {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "default": 1},
    },
    "PerPage": {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
    },
}

HEADERS = {
    "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Basic realm="..."'},
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."},
}

RESPONSES = {
    "Unauthorized": json_body(
        "No valid credentials: log in, or send an API token or basic auth.",
        ref("Error"),
        {"WWW-Authenticate": header("WWW-Authenticate")},
    ),
    "BadRequest": json_body(
        "Bad input (also a NUL character in a query parameter); `fields` names each bad field.",
        ref("ValidationError"),
    ),
    "Forbidden": json_body(
        "The user lacks the permission this write needs, or a session write lacks the CSRF token.",
        ref("Error"),
    ),
    "NotFound": json_body("No such id, or no such page.", ref("Error")),
    "Conflict": json_body("The change conflicts with the current state.", ref("Error")),
    "TooLarge": json_body("The body is larger than 256 KiB.", ref("Error")),
}


# --- Operations ---------------------------------------------------------------


def op(
    op_id: str,
    summary: str,
    tag: str,
    responses: dict,
    *,
    parameters: list | None = None,
    body: dict | None = None,
    security: list | None = None,
    description: str = "",
) -> dict:
    out: dict = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if body:
        out["requestBody"] = body
    out["responses"] = responses
    if security is not None:
        out["security"] = security
    return out


def json_request(schema: dict, description: str = "") -> dict:
    out = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        out["description"] = description
    return out


def text_request(description: str) -> dict:
    return {
        "required": True,
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }


def query_param(name: str, description: str, schema: dict, **extra: object) -> dict:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}
