"""The notification endpoints in the OpenAPI document: channels (with the
test send), routes and the delivery log, written from vigil.api.notify and
vigil.notify.serialize."""

from __future__ import annotations

from vigil.api.openapi_components import (
    COUNT,
    ID,
    NULLABLE_TIME,
    RULE_FIELDS,
    TIME,
    json_body,
    json_request,
    nullable,
    obj,
    op,
    page,
    query_param,
    ref,
    reference,
    response,
)

ID_PARAM = [{"$ref": "#/components/parameters/Id"}]
PAGE_PARAMS = [
    {"$ref": "#/components/parameters/Page"},
    {"$ref": "#/components/parameters/PerPage"},
]
KINDS = ["email", "sms", "pagerduty", "opsgenie", "slack", "webhook"]
STATUSES = ["scheduled", "pending", "sending", "retry", "sent", "failed", "cancelled"]
PURPOSES = ["route", "escalation", "fallback", "test"]

CHANNEL_FIELDS: dict = {
    "name": {"type": "string", "maxLength": 100, "description": "Unique among channels."},
    "kind": {
        "type": "string",
        "description": "email, sms, pagerduty, opsgenie, slack, webhook (or another installed "
        "kind). Set when the channel is made; it cannot change.",
        "examples": KINDS,
    },
    "enabled": {"type": "boolean", "default": True},
    "is_fallback": {
        "type": "boolean",
        "default": False,
        "description": "Receives the notifications whose delivery finally failed elsewhere.",
    },
    "config": {
        "type": "object",
        "description": "The settings of the kind, shown back as sent (docs/channels.md). "
        "At most 64 KiB as JSON.",
    },
}

SCHEMAS: dict = {
    "Channel": obj(
        {
            "id": ID,
            **CHANNEL_FIELDS,
            "label": {"type": "string", "description": "The kind as people read it."},
            "secrets": {
                "type": "object",
                "additionalProperties": {"enum": ["set", "not set"]},
                "description": "Each secret of the kind, and whether it is set: secrets are "
                "write-only and never answered.",
                "examples": [{"routing_key": "set"}],
            },
            "created": TIME,
            "last_success_at": NULLABLE_TIME,
            "last_error": {
                "type": "string",
                "description": "The last failure, with the channel's secrets masked.",
            },
            "last_error_at": NULLABLE_TIME,
        }
    ),
    "ChannelInput": {
        "type": "object",
        "properties": {
            **CHANNEL_FIELDS,
            "secrets": {
                "type": "object",
                "additionalProperties": {"type": ["string", "null"], "maxLength": 4000},
                "description": "New values of the kind's secrets: a string sets one, null "
                "(or an empty string) clears it; one not sent keeps its value, even with PUT. "
                '"set" and "not set" also keep it, so that an answer can be sent back.',
                "examples": [{"routing_key": "0123456789abcdef0123456789abcdef"}],
            },
        },
        "description": "The read-only fields of an answer (id, label, created, last_*) may be "
        "sent back; they are ignored.",
    },
    "Route": obj(
        {
            "id": ID,
            "name": {"type": "string", "maxLength": 100},
            "enabled": {"type": "boolean"},
            "is_default": {"type": "boolean", "description": "Used when no other route matches."},
            "rule": reference("rule"),
            "severity": {"enum": ["", *RULE_FIELDS["severity"]["enum"]]},
            "location": reference("location"),
            "tag": reference("tag"),
            "channels": {"type": "array", "items": ID, "description": "Channel ids."},
            "escalate_after_minutes": {**COUNT, "description": "0: never escalate."},
            "escalate_to": {
                "type": "array",
                "items": ID,
                "description": "Channel ids notified when a firing alert is still "
                "unacknowledged after escalate_after_minutes.",
            },
        }
    ),
    "RouteInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100, "description": "Unique among routes."},
            "enabled": {"type": "boolean", "default": True},
            "is_default": {"type": "boolean", "default": False},
            "rule": reference("rule; null: any rule"),
            "severity": {
                "enum": ["", *RULE_FIELDS["severity"]["enum"]],
                "default": "",
                "description": "Empty: any severity.",
            },
            "location": reference("location; null: anywhere"),
            "tag": reference("tag; null: any tag"),
            "channels": {"type": "array", "items": ID, "maxItems": 1000, "default": []},
            "escalate_after_minutes": {**COUNT, "default": 0},
            "escalate_to": {"type": "array", "items": ID, "maxItems": 1000, "default": []},
        },
        "description": "Every condition set must match. Escalation needs both minutes and "
        "channels.",
    },
    "Delivery": obj(
        {
            "id": ID,
            "notification": {
                "oneOf": [
                    obj({"id": ID, "kind": {"type": "string"}, "title": {"type": "string"}}),
                    {"type": "null"},
                ],
                "description": "null for a test notification.",
            },
            "channel": obj({"id": ID, "name": {"type": "string"}, "kind": {"type": "string"}}),
            "purpose": {"enum": PURPOSES},
            "status": {"enum": STATUSES},
            "key": {
                "type": "string",
                "format": "uuid",
                "description": "The idempotency key, the same on every attempt.",
            },
            "attempts": COUNT,
            "created": TIME,
            "next_attempt_at": TIME,
            "sent_at": NULLABLE_TIME,
            "last_error": {"type": "string", "description": "Secrets masked."},
        }
    ),
    "Attempt": obj(
        {
            "number": {"type": "integer", "minimum": 1},
            "at": TIME,
            "duration_ms": COUNT,
            "status_code": nullable("integer", description="HTTP status or SMTP reply code."),
            "outcome": {"enum": ["sent", "retry", "failed"]},
            "answer": {"type": "string", "description": "The receiver's answer, secrets masked."},
            "error": {"type": "string", "description": "Secrets masked."},
        }
    ),
}
SCHEMAS["DeliveryDetail"] = {
    **SCHEMAS["Delivery"],
    "properties": {
        **SCHEMAS["Delivery"]["properties"],
        "log": {"type": "array", "items": ref("Attempt"), "description": "Oldest first."},
    },
    "required": [*SCHEMAS["Delivery"]["required"], "log"],
}
SCHEMAS["TestResult"] = obj(
    {
        "outcome": {
            "enum": ["sent", "failed", "cancelled"],
            "description": "sent; failed (a test is not retried); cancelled (the channel "
            "is disabled).",
        },
        "delivery": {"oneOf": [ref("DeliveryDetail"), {"type": "null"}]},
    }
)


def _read(op_id: str, summary: str, tag: str, ok: dict, **kw) -> dict:
    responses = {
        "200": ok,
        "400": response("BadRequest"),
        "401": response("Unauthorized"),
        "403": response("Forbidden"),
    }
    responses.update(kw.pop("more", {}))
    return op(op_id, summary, tag, responses, **kw)


def _write(op_id: str, summary: str, tag: str, ok: dict, status: str = "200", **kw) -> dict:
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


NOT_FOUND = {"404": response("NotFound")}
CONFLICT = {"404": response("NotFound"), "409": response("Conflict")}

PATHS: dict = {
    "/api/v1/channels": {
        "get": _read(
            "listChannels",
            "Every channel, by name (needs notify.view_channel)",
            "channels",
            json_body(
                "The channels.", obj({"channels": {"type": "array", "items": ref("Channel")}})
            ),
        ),
        "post": _write(
            "createChannel",
            "Create a channel (needs notify.add_channel)",
            "channels",
            json_body("The new channel; its secrets only as set / not set.", ref("Channel")),
            status="201",
            body=json_request({**ref("ChannelInput"), "required": ["name", "kind"]}),
            description="The kind's own checks run on the settings and secrets; a refused "
            "field is named config.<name> or secrets.<name>.",
            more={"409": response("Conflict")},
        ),
    },
    "/api/v1/channels/{pk}": {
        "get": _read(
            "getChannel",
            "One channel (needs notify.view_channel)",
            "channels",
            json_body("The channel.", ref("Channel")),
            parameters=ID_PARAM,
            more=NOT_FOUND,
        ),
        "put": _write(
            "replaceChannel",
            "Replace a channel: fields not sent take their defaults, secrets not sent are kept "
            "(needs notify.change_channel)",
            "channels",
            json_body("The channel.", ref("Channel")),
            parameters=ID_PARAM,
            body=json_request({**ref("ChannelInput"), "required": ["name"]}),
            more=CONFLICT,
        ),
        "patch": _write(
            "updateChannel",
            "Change the fields sent (needs notify.change_channel)",
            "channels",
            json_body("The channel.", ref("Channel")),
            parameters=ID_PARAM,
            body=json_request(ref("ChannelInput")),
            more=CONFLICT,
        ),
        "delete": _write(
            "deleteChannel",
            "Delete a channel and its delivery log (needs notify.delete_channel)",
            "channels",
            {"description": "Deleted."},
            status="204",
            parameters=ID_PARAM,
            more=NOT_FOUND,
        ),
    },
    "/api/v1/channels/{pk}/test": {
        "post": _write(
            "testChannel",
            "Send a test notification now (needs notify.change_channel)",
            "channels",
            json_body(
                "How it went, sent or not, with the receiver's answer; logged as a delivery "
                "of purpose test.",
                ref("TestResult"),
            ),
            parameters=ID_PARAM,
            more=NOT_FOUND,
        )
    },
    "/api/v1/routes": {
        "get": _read(
            "listRoutes",
            "Every route, by name (needs notify.view_route)",
            "routes",
            json_body("The routes.", obj({"routes": {"type": "array", "items": ref("Route")}})),
        ),
        "post": _write(
            "createRoute",
            "Create a route (needs notify.add_route)",
            "routes",
            json_body("The new route.", ref("Route")),
            status="201",
            body=json_request({**ref("RouteInput"), "required": ["name"]}),
            more={"409": response("Conflict")},
        ),
    },
    "/api/v1/routes/{pk}": {
        "get": _read(
            "getRoute",
            "One route (needs notify.view_route)",
            "routes",
            json_body("The route.", ref("Route")),
            parameters=ID_PARAM,
            more=NOT_FOUND,
        ),
        "put": _write(
            "replaceRoute",
            "Replace a route: fields not sent take their defaults (needs notify.change_route)",
            "routes",
            json_body("The route.", ref("Route")),
            parameters=ID_PARAM,
            body=json_request({**ref("RouteInput"), "required": ["name"]}),
            more=CONFLICT,
        ),
        "patch": _write(
            "updateRoute",
            "Change the fields sent (needs notify.change_route)",
            "routes",
            json_body("The route.", ref("Route")),
            parameters=ID_PARAM,
            body=json_request(ref("RouteInput")),
            more=CONFLICT,
        ),
        "delete": _write(
            "deleteRoute",
            "Delete a route (needs notify.delete_route)",
            "routes",
            {"description": "Deleted."},
            status="204",
            parameters=ID_PARAM,
            more=NOT_FOUND,
        ),
    },
    "/api/v1/deliveries": {
        "get": _read(
            "listDeliveries",
            "The delivery log, newest first, a page at a time (needs notify.view_delivery)",
            "deliveries",
            json_body("One page.", page("deliveries", "Delivery")),
            parameters=[
                query_param("status", "Only deliveries in this state.", {"enum": STATUSES}),
                query_param("channel", "The channel's id or name.", {"type": "string"}),
                query_param("purpose", "Only deliveries of this purpose.", {"enum": PURPOSES}),
                query_param("notification", "The notification's id.", ID),
                *PAGE_PARAMS,
            ],
            more=NOT_FOUND,
        )
    },
    "/api/v1/deliveries/{pk}": {
        "get": _read(
            "getDelivery",
            "One delivery with its attempts (needs notify.view_delivery)",
            "deliveries",
            json_body("The delivery.", ref("DeliveryDetail")),
            parameters=ID_PARAM,
            more=NOT_FOUND,
        )
    },
}
