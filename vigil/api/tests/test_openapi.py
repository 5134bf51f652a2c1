"""The OpenAPI document: it covers every route, is valid OpenAPI 3.1, and real
answers of the endpoints validate against the schemas it gives them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from vigil.alerts.dispatch import item
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule
from vigil.api.models import ApiToken
from vigil.api.openapi import schema
from vigil.servers.models import Location
from vigil.testing import basic, batch, bearer, make_server, make_token, store

pytestmark = pytest.mark.django_db

# The routes the document must describe: the API and the machine endpoints.
DOCUMENTED = re.compile(r"^(api/v1/|write$|query$|ping$|healthz$|metrics$)")
WRITE_PERMISSIONS = (
    "add_rule",
    "change_rule",
    "delete_rule",
    "change_alert",
    "add_silence",
    "delete_silence",
)


def routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    """Every route of the URL configuration, as written in urls.py."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def openapi_path(route: str) -> str:
    """api/v1/rules/<int:pk> -> /api/v1/rules/{pk}"""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def strict(node: object) -> object:
    """The document with every object schema closed: an answer carrying an
    undocumented field then fails validation, as a missing one does."""
    if isinstance(node, dict):
        out = {key: strict(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(value) for value in node]
    return node


def pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def conforms(response: HttpResponse, operation: str, status: int) -> object:
    """Check an answer against the document: the expected status, documented
    for the operation ("POST /api/v1/rules"), with its content type, headers
    and body schema. Returns the body."""
    assert response.status_code == status, (operation, response.content[:500])
    method, path = operation.split(" ")
    method = method.lower()
    doc = strict(schema())
    answers = doc["paths"][path][method]["responses"]
    assert str(status) in answers, f"{operation} answered {status}: undocumented"
    where = f"#/paths/{pointer(path)}/{method}/responses/{status}"
    answer = answers[str(status)]
    if "$ref" in answer:
        where = answer["$ref"]
        answer = doc["components"]["responses"][where.rsplit("/", 1)[1]]
    for name in answer.get("headers", {}):
        assert response.has_header(name), f"{operation} {status} lacks the header {name}"
    content = answer.get("content")
    if not content:
        assert response.content == b""
        return None
    media = response["Content-Type"].split(";")[0].strip()
    assert media in content, f"{operation} {status} answered {media}, not {list(content)}"
    if media != "application/json":
        return response.content.decode()
    body = orjson.loads(response.content)
    root = {**doc, "$ref": f"{where}/content/{pointer(media)}/schema"}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)
    return body


def user_with(name: str, *codenames: str) -> User:
    user = User.objects.create_user(name, password="secret-pass-1")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="alerts", codename__in=codenames)
    )
    return user


class Api:
    """JSON requests with a user's API token, CSRF enforced as in production."""

    def __init__(self, user: User | None) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {}
        if user is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Token {ApiToken.issue(user, 'test')[1]}"

    def __call__(self, method: str, url: str, data: object = None) -> HttpResponse:
        body = b"" if data is None else orjson.dumps(data)
        return self.client.generic(
            method, url, body, content_type="application/json", **self.headers
        )


@pytest.fixture
def editor() -> Api:
    return Api(user_with("editor", *WRITE_PERMISSIONS))


@pytest.fixture
def reader() -> Api:
    return Api(user_with("reader"))


def firing_alert(rule: Rule) -> Alert:
    now = timezone.now()
    server = make_server("web-1", location=Location.objects.create(name="paris"))
    alert = Alert.objects.create(
        rule=rule,
        server=server,
        labels={"mountpoint": "/"},
        state=Alert.State.FIRING,
        since=now - timedelta(minutes=10),
        fired_at=now - timedelta(minutes=5),
        changed_at=now,
        value=93.5,
    )
    AlertEvent.objects.create(
        alert=alert, rule=rule, server=server, kind="firing", at=now, value=93.5, text="fired"
    )
    return alert


# --- Coverage -----------------------------------------------------------------


def test_it_documents_every_api_route_and_nothing_else():
    served = {openapi_path(r) for r in routes() if DOCUMENTED.match(r)}
    documented = set(schema()["paths"])
    assert served - documented == set(), "routes without documentation"
    assert documented - served == set(), "documented paths that no route serves"
    assert {"/api/v1/openapi.json", "/write", "/query", "/ping", "/healthz"} <= served


def test_it_documents_exactly_the_methods_each_route_allows(client):
    """Each view answers a method it does not take with 405 and Allow."""
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    for path, item_ in schema()["paths"].items():
        response = client.generic("TRACE", path.replace("{pk}", "1"))
        assert response.status_code == 405, path
        allowed = {m.strip().lower() for m in response["Allow"].split(",")}
        documented = {m for m in item_ if m in ("get", "put", "post", "delete", "patch", "head")}
        assert documented == allowed, path


# --- Validity -----------------------------------------------------------------


def test_it_is_a_valid_openapi_3_1_document():
    doc = schema()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    # Plain data: what the endpoint serves is the document itself.
    assert orjson.loads(orjson.dumps(doc)) == doc
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_every_schema_it_gives_is_a_valid_json_schema():
    doc = schema()
    for item_ in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(item_)
    for op in (o for ops in doc["paths"].values() for o in ops.values()):
        for param in op.get("parameters", []):
            Draft202012Validator.check_schema(param.get("schema", {}))


def test_it_names_the_security_schemes_the_views_accept():
    doc = schema()
    schemes = doc["components"]["securitySchemes"]
    assert doc["security"] == [{"session": []}, {"apiToken": []}, {"basicAuth": []}]
    assert (schemes["session"]["in"], schemes["session"]["name"]) == (
        "cookie",
        settings.SESSION_COOKIE_NAME,
    )
    assert schemes["ingestBearer"]["scheme"] == "bearer"
    for path in ("/api/v1/ingest", "/api/v1/ingest/collectd", "/write", "/query"):
        for op in doc["paths"][path].values():
            assert {"ingestBearer": []} in op["security"], path
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["paths"]["/ping"]["get"]["security"] == []


# --- Real answers -------------------------------------------------------------

CPU_RULE = {"name": "CPU high", "metric": "cpu_usage_percent", "threshold": 90}


def test_a_created_rule_and_the_rule_reads_match_their_schemas(editor):
    created = conforms(editor("POST", "/api/v1/rules", CPU_RULE), "POST /api/v1/rules", 201)
    assert created["name"] == "CPU high"
    conforms(editor("GET", "/api/v1/rules"), "GET /api/v1/rules", 200)
    url, path = f"/api/v1/rules/{created['id']}", "/api/v1/rules/{pk}"
    conforms(editor("PATCH", url, {"threshold": 95}), f"PATCH {path}", 200)
    conforms(editor("PUT", url, {**CPU_RULE, "threshold": 80}), f"PUT {path}", 200)
    conforms(editor("DELETE", url), f"DELETE {path}", 204)
    conforms(editor("GET", url), f"GET {path}", 404)


def test_errors_match_the_error_schemas(editor, reader):
    bad = editor("POST", "/api/v1/rules", {"name": "x", "threshold": "9"})
    assert conforms(bad, "POST /api/v1/rules", 400)["fields"] == {"threshold": ["must be a number"]}
    unknown = editor("POST", "/api/v1/rules", {"name": "x", "treshold": 9})
    assert conforms(unknown, "POST /api/v1/rules", 400)["fields"] == {"treshold": ["unknown field"]}
    conforms(reader("POST", "/api/v1/rules", CPU_RULE), "POST /api/v1/rules", 403)
    conforms(Api(None)("GET", "/api/v1/alerts"), "GET /api/v1/alerts", 401)
    conforms(editor("GET", "/api/v1/alerts?state=nope"), "GET /api/v1/alerts", 400)
    conforms(editor("GET", "/api/v1/alerts?page=9"), "GET /api/v1/alerts", 404)
    too_big = editor("POST", "/api/v1/silences", {"comment": "x" * 300_000})
    conforms(too_big, "POST /api/v1/silences", 413)


def test_alert_answers_match_their_schemas(editor):
    rule = Rule.objects.create(name="Disk full", metric="filesystem_used_percent", threshold=90)
    alert = firing_alert(rule)
    page = conforms(editor("GET", "/api/v1/alerts"), "GET /api/v1/alerts", 200)
    assert [a["id"] for a in page["alerts"]] == [alert.pk]
    detail = conforms(editor("GET", f"/api/v1/alerts/{alert.pk}"), "GET /api/v1/alerts/{pk}", 200)
    assert [event["kind"] for event in detail["events"]] == ["firing"]
    url = f"/api/v1/alerts/{alert.pk}/acknowledge"
    operation = "POST /api/v1/alerts/{pk}/acknowledge"
    taken = conforms(editor("POST", url, {"comment": "on it"}), operation, 200)
    assert taken["acknowledged_by"] == "editor"
    conforms(editor("POST", url, {"comment": "on it"}), operation, 409)


def test_silence_answers_match_their_schemas(editor):
    server = make_server("db-1")
    silence = {
        "server": server.pk,
        "comment": "kernel upgrade",
        "ends_at": int(time.time()) + 3600,
        "weekdays": "0,1,2,3,4,5,6",
        "window_start": "22:00",
        "window_minutes": 90,
    }
    created = conforms(editor("POST", "/api/v1/silences", silence), "POST /api/v1/silences", 201)
    assert (created["server"], created["window_start"]) == (server.pk, "22:00:00")
    conforms(editor("GET", "/api/v1/silences"), "GET /api/v1/silences", 200)
    url = f"/api/v1/silences/{created['id']}"
    conforms(editor("GET", url), "GET /api/v1/silences/{pk}", 200)
    assert conforms(editor("DELETE", url), "DELETE /api/v1/silences/{pk}", 200)["expired"]
    endless = editor("POST", "/api/v1/silences", {"comment": "?"})
    assert "ends_at" in conforms(endless, "POST /api/v1/silences", 400)["fields"]


def test_notification_answers_match_their_schema(editor):
    rule = Rule.objects.create(name="Disk full", metric="filesystem_used_percent", threshold=90)
    alert = firing_alert(rule)
    n = Notification.objects.create(
        kind="firing", rule=rule, severity="warning", title="Disk full", items=[item(alert)]
    )
    n.alerts.add(alert)
    page = conforms(editor("GET", "/api/v1/notifications"), "GET /api/v1/notifications", 200)
    assert page["notifications"][0]["alerts"] == [alert.pk]


def test_a_backtest_matches_its_schema(editor):
    server = make_server("web-1")
    now = int(time.time())
    store(server, "cpu_usage_percent", [(now - 60 * i, 95.0) for i in range(30)])
    replay = editor("POST", "/api/v1/rules/backtest", {**CPU_RULE, "days": 1})
    assert conforms(replay, "POST /api/v1/rules/backtest", 200)["series"] == 1


def test_query_and_server_answers_match_their_schemas(reader):
    server = make_server("web-1")
    now = int(time.time())
    store(server, "cpu_usage_percent", [(now - 120, 10.0), (now - 60, 20.0)], {"cpu": "all"})
    plain = reader("GET", "/api/v1/query?metric=cpu_usage_percent&server=web-1&cpu=all")
    points = conforms(plain, "GET /api/v1/query", 200)["series"][0]["points"]
    assert [value for _, value in points] == [10.0, 20.0]
    one = f"/api/v1/query?metric=cpu_usage_percent&start={now - 300}&end={now}&max_points=1"
    assert conforms(reader("GET", one), "GET /api/v1/query", 200)["series"][0]["max"] == [20.0]
    error = conforms(reader("GET", "/api/v1/query?max_points=5"), "GET /api/v1/query", 400)
    assert "metric is required" in error["error"]
    servers = conforms(reader("GET", "/api/v1/servers"), "GET /api/v1/servers", 200)
    assert [s["name"] for s in servers["servers"]] == ["web-1"]
    assert "vigil_servers" in conforms(reader("GET", "/metrics"), "GET /metrics", 200)


def test_ingest_answers_match_their_schemas(client):
    now = int(time.time())
    token = bearer(make_token())
    good = batch("web-1", ("cpu_usage_percent", {}, [[now, 1.5]]))
    json = "application/json"
    conforms(client.post("/api/v1/ingest", good, json, **token), "POST /api/v1/ingest", 204)
    part = batch("web-1", ("cpu_usage_percent", {}, [[now, 1.5], [now, "x"]]))
    partial = conforms(
        client.post("/api/v1/ingest", part, json, **token), "POST /api/v1/ingest", 400
    )
    assert (partial["written"], partial["rejected"]) == (1, 1)
    conforms(client.post("/api/v1/ingest", good, json), "POST /api/v1/ingest", 401)
    bound = bearer(make_token(make_server("db-1")))
    conforms(client.post("/api/v1/ingest", good, json, **bound), "POST /api/v1/ingest", 403)
    collectd = client.post("/api/v1/ingest/collectd?store_rates=maybe", b"[]", json, **token)
    conforms(collectd, "POST /api/v1/ingest/collectd", 400)
    prometheus = client.post(
        "/api/v1/ingest/prometheus?host=web-1", b"up 1\n", "text/plain", **token
    )
    conforms(prometheus, "POST /api/v1/ingest/prometheus", 204)


def test_influx_answers_match_their_schemas(client):
    token = basic("telegraf", make_token())
    line = f"cpu,cpu=cpu-total,host=web-1 usage_idle=90.5 {int(time.time())}"
    text = "text/plain"
    conforms(client.post("/write?db=telegraf&precision=s", line, text, **token), "POST /write", 204)
    conforms(
        client.post("/write?precision=s", "cpu usage_idle=", text, **token), "POST /write", 400
    )
    conforms(client.post("/write", line, text), "POST /write", 401)
    created = client.get("/query", {"q": "CREATE DATABASE telegraf"}, **token)
    assert conforms(created, "GET /query", 200) == {"results": [{"statement_id": 0}]}
    conforms(client.post("/query", {"q": "SHOW DATABASES"}, **token), "POST /query", 200)
    conforms(client.get("/query", **token), "GET /query", 400)
    conforms(client.get("/ping"), "GET /ping", 204)
    assert conforms(client.get("/ping?verbose=true"), "GET /ping", 200)["version"]
    conforms(client.head("/ping"), "HEAD /ping", 204)
    assert conforms(client.get("/healthz"), "GET /healthz", 200)["status"] == "ok"


# --- The endpoint -------------------------------------------------------------


def test_an_anonymous_request_for_the_document_gets_401(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert "error" in response.json()
    bad_token = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION="Token vga_wrong")
    assert bad_token.status_code == 401
    # An ingest token is not an API token.
    ingest = client.get("/api/v1/openapi.json", **bearer(make_token()))
    assert ingest.status_code == 401


def test_any_logged_in_user_reads_the_document(client, reader):
    served = reader("GET", "/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == orjson.loads(orjson.dumps(schema()))
    user_with("plain")
    assert client.get("/api/v1/openapi.json", **basic("plain", "secret-pass-1")).status_code == 200
    client.force_login(User.objects.get(username="plain"))
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.post("/api/v1/openapi.json").status_code == 405
