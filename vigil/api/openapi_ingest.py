"""The ingest and InfluxDB 1.x endpoints in the OpenAPI document: their
bodies, answers and token schemes, written from vigil.ingest (handle.py,
views*.py, auth.py) and docs/ingest-json.md."""

from __future__ import annotations

from vigil.api.openapi_components import (
    header,
    json_body,
    json_request,
    obj,
    op,
    query_param,
    ref,
    response,
    text_request,
)

SCHEMAS: dict = {
    "IngestError": obj(
        {
            "error": {"type": "string"},
            "written": {"type": "integer", "minimum": 0, "description": "Samples committed."},
            "rejected": {"type": "integer", "minimum": 0, "description": "Samples refused."},
            "errors": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 20,
                "description": "The first problems, each naming where it is.",
            },
        },
        required=["error"],
        description="written, rejected and errors come with a partial write: the valid "
        "samples of the batch are committed.",
    ),
    "VigilBatch": {
        "type": "object",
        "properties": {
            "host": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}$",
                "description": "Required with a token that registers servers.",
            },
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "metric": {
                            "type": "string",
                            "pattern": r"^[A-Za-z_:][A-Za-z0-9_:.\-/]{0,199}$",
                        },
                        "labels": {
                            "type": "object",
                            "maxProperties": 32,
                            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
                            "additionalProperties": {
                                "type": ["string", "number"],
                                "maxLength": 200,
                                "description": "Numbers are taken as text.",
                            },
                        },
                        "points": {
                            "type": "array",
                            "items": {
                                "type": "array",
                                "prefixItems": [
                                    {
                                        "type": "number",
                                        "description": "Unix seconds (a fraction is dropped), "
                                        "from 2000 to an hour ahead of the server's clock.",
                                    },
                                    {"type": "number", "description": "A finite value."},
                                ],
                                "minItems": 2,
                                "maxItems": 2,
                            },
                        },
                    },
                    "required": ["metric", "points"],
                },
            },
        },
        "required": ["series"],
    },
    "CollectdValueList": {
        "type": "object",
        "description": "One value list as collectd's write_http plugin sends it.",
        "properties": {
            "values": {
                "type": "array",
                "items": {"type": ["number", "null"]},
                "minItems": 1,
                "maxItems": 64,
            },
            "dstypes": {
                "type": "array",
                "items": {"enum": ["gauge", "derive", "counter", "absolute"]},
            },
            "dsnames": {"type": "array", "items": {"type": "string", "maxLength": 127}},
            "time": {"type": "number", "description": "Unix seconds."},
            "interval": {"type": "number", "exclusiveMinimum": 0},
            "host": {"type": "string"},
            "plugin": {"type": "string", "minLength": 1, "maxLength": 127},
            "plugin_instance": {"type": "string", "maxLength": 127},
            "type": {"type": "string", "minLength": 1, "maxLength": 127},
            "type_instance": {"type": "string", "maxLength": 127},
        },
        "required": ["values", "dstypes", "dsnames", "time", "host", "plugin", "type"],
    },
    "InfluxQueryResult": obj(
        {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "statement_id": {"type": "integer", "minimum": 0},
                        "series": {"type": "array", "items": {"type": "object"}},
                        "error": {"type": "string"},
                    },
                    "required": ["statement_id"],
                },
            }
        }
    ),
}

PARAMETERS = {
    "ContentEncoding": {
        "name": "Content-Encoding",
        "in": "header",
        "description": "gzip to send a compressed body.",
        "schema": {"enum": ["gzip", "x-gzip", "identity"]},
    },
    "InfluxUser": {
        "name": "u",
        "in": "query",
        "description": "InfluxDB 1.x user: the ingest token when p is not sent.",
        "schema": {"type": "string"},
    },
    "InfluxPassword": {
        "name": "p",
        "in": "query",
        "description": "InfluxDB 1.x password: the ingest token.",
        "schema": {"type": "string"},
    },
}

HEADERS = {
    "X-Influxdb-Version": {"schema": {"type": "string"}, "description": "1.x, as InfluxDB."},
    "X-Influxdb-Build": {"schema": {"type": "string"}},
    "X-Influxdb-Error": {"schema": {"type": "string"}, "description": "The error, one line."},
}

RESPONSES = {
    "IngestBadRequest": json_body(
        "Some or all of the body is invalid; the valid samples are committed.",
        ref("IngestError"),
    ),
    "IngestUnauthorized": json_body(
        "No ingest token, or a wrong or disabled one.",
        ref("Error"),
        {"WWW-Authenticate": header("WWW-Authenticate")},
    ),
    "IngestForbidden": json_body(
        "A token bound to one server was used for another host.", ref("Error")
    ),
    "IngestConflict": json_body(
        "A new host name is already the name of another server.", ref("Error")
    ),
    "IngestTooLarge": json_body(
        "The body is too large, or too large once decompressed.", ref("Error")
    ),
    "IngestUnsupported": json_body("A Content-Encoding other than gzip.", ref("Error")),
    "IngestUnavailable": json_body(
        "The samples cannot be stored now (database down or busy, writer queue full): "
        "send them again after Retry-After.",
        ref("Error"),
        {"Retry-After": header("Retry-After")},
    ),
}

SECURITY = [
    {"ingestBearer": []},
    {"ingestToken": []},
    {"ingestBasic": []},
    {"ingestQueryToken": []},
]
INGEST_ANSWERS = {
    "204": {"description": "Every sample is committed."},
    "400": response("IngestBadRequest"),
    "401": response("IngestUnauthorized"),
    "403": response("IngestForbidden"),
    "409": response("IngestConflict"),
    "413": response("IngestTooLarge"),
    "415": response("IngestUnsupported"),
    "503": response("IngestUnavailable"),
}


def _influx(description: str, *extra: str) -> dict:
    """An InfluxDB-style error: the JSON body, repeated in X-Influxdb-Error."""
    names = ("X-Influxdb-Version", "X-Influxdb-Build", "X-Influxdb-Error", *extra)
    return json_body(description, ref("Error"), {name: header(name) for name in names})


PATHS: dict = {
    "/api/v1/ingest": {
        "post": op(
            "ingest",
            "Vigil's own JSON format (vigil agent)",
            "ingest",
            INGEST_ANSWERS,
            parameters=[{"$ref": "#/components/parameters/ContentEncoding"}],
            body=json_request(ref("VigilBatch")),
            security=SECURITY,
        )
    },
    "/api/v1/ingest/collectd": {
        "post": op(
            "ingestCollectd",
            'collectd write_http with Format "JSON"',
            "ingest",
            INGEST_ANSWERS,
            parameters=[
                query_param(
                    "store_rates",
                    "Whether the Node has StoreRates on (true/false, 1/0, yes/no); "
                    "without it the values tell.",
                    {"enum": ["true", "false", "1", "0", "yes", "no"]},
                ),
                {"$ref": "#/components/parameters/ContentEncoding"},
            ],
            body=json_request({"type": "array", "items": ref("CollectdValueList")}),
            security=SECURITY,
        )
    },
    "/api/v1/ingest/prometheus": {
        "post": op(
            "ingestPrometheus",
            "Prometheus text format pushed by scripts",
            "ingest",
            INGEST_ANSWERS,
            parameters=[
                query_param(
                    "host",
                    "The server's host name; required with a token that registers servers.",
                    {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}$"},
                ),
                {"$ref": "#/components/parameters/ContentEncoding"},
            ],
            body=text_request("Prometheus exposition format; NaN and Inf samples are refused."),
            security=SECURITY,
        )
    },
    "/write": {
        "post": op(
            "influxWrite",
            "InfluxDB 1.x line protocol (Telegraf outputs.influxdb)",
            "influx",
            {
                "204": {
                    "description": "Every point is committed.",
                    "headers": {
                        name: header(name) for name in ("X-Influxdb-Version", "X-Influxdb-Build")
                    },
                },
                "400": _influx("Invalid lines (named by number); the valid ones are committed."),
                "401": _influx("No valid ingest token.", "WWW-Authenticate"),
                "403": _influx("A token bound to one server was used for another host."),
                "409": _influx("A new host name is already the name of another server."),
                "413": _influx("The body is too large, or too large once decompressed."),
                "415": _influx("A Content-Encoding other than gzip."),
                "503": _influx("The points cannot be stored now: retry.", "Retry-After"),
            },
            parameters=[
                query_param(
                    "precision",
                    "Unit of the timestamps.",
                    {
                        "enum": ["n", "ns", "u", "us", "µ", "µs", "ms", "s", "m", "h"],
                        "default": "ns",
                    },
                ),
                query_param("db", "Accepted and ignored.", {"type": "string"}),
                query_param("rp", "Accepted and ignored.", {"type": "string"}),
                {"$ref": "#/components/parameters/InfluxUser"},
                {"$ref": "#/components/parameters/InfluxPassword"},
                {"$ref": "#/components/parameters/ContentEncoding"},
            ],
            body=text_request("Line protocol; the host tag names the server."),
            security=SECURITY,
        )
    },
    "/query": {
        method: op(
            f"influxQuery{method.title()}",
            "The statements agents send at start-up (CREATE DATABASE ...); no reads",
            "influx",
            {
                "200": json_body(
                    "One result per statement; statements other than CREATE DATABASE, "
                    "CREATE/ALTER RETENTION POLICY and SHOW DATABASES carry an error.",
                    ref("InfluxQueryResult"),
                    {name: header(name) for name in ("X-Influxdb-Version", "X-Influxdb-Build")},
                ),
                "400": _influx("No q, or a form that cannot be read."),
                "401": _influx("No valid ingest token.", "WWW-Authenticate"),
                "413": _influx("The body or the query is too long."),
                "503": _influx("The database is unavailable: retry.", "Retry-After"),
            },
            parameters=[
                query_param(
                    "q",
                    "Statements separated by ';' (in the query string, or in a POST form).",
                    {"type": "string", "maxLength": 10_000},
                ),
                query_param("db", "Accepted and ignored.", {"type": "string"}),
                {"$ref": "#/components/parameters/InfluxUser"},
                {"$ref": "#/components/parameters/InfluxPassword"},
            ],
            body={
                "required": False,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {"q": {"type": "string"}}}
                    }
                },
            }
            if method == "post"
            else None,
            security=SECURITY,
        )
        for method in ("get", "post")
    },
    "/ping": {
        "get": op(
            "influxPing",
            "Liveness, as InfluxDB's /ping: no token needed",
            "influx",
            {
                "200": json_body(
                    "With verbose=true or 1.",
                    obj({"version": {"type": "string"}}),
                    {"X-Influxdb-Version": header("X-Influxdb-Version")},
                ),
                "204": {
                    "description": "Alive.",
                    "headers": {"X-Influxdb-Version": header("X-Influxdb-Version")},
                },
            },
            parameters=[
                query_param("verbose", "true or 1: answer the version.", {"type": "string"})
            ],
            security=[],
        ),
        "head": op(
            "influxPingHead",
            "Liveness, as InfluxDB's /ping, without a body",
            "influx",
            {
                "200": {"description": "Alive (verbose)."},
                "204": {"description": "Alive."},
            },
            security=[],
        ),
    },
}


def security_schemes() -> dict:
    return {
        "ingestBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <ingest token>`.",
        },
        "ingestToken": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Authorization: Token <ingest token>`.",
        },
        "ingestBasic": {
            "type": "http",
            "scheme": "basic",
            "description": "The ingest token as the password (any user name), or as the user "
            "name with an empty password: what Telegraf and collectd send.",
        },
        "ingestQueryToken": {
            "type": "apiKey",
            "in": "query",
            "name": "p",
            "description": "InfluxDB 1.x style: the ingest token as ?p= (or ?u=), read only "
            "when no Authorization header is sent.",
        },
    }
