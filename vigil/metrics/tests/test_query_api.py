from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from vigil.api.models import ApiToken
from vigil.servers.models import Location
from vigil.testing import basic, make_server, store

URL = "/api/v1/query"
T0 = 1_790_000_000
pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return User.objects.create_user("alice", password="secret-pass-1")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def q(client, **params):
    return client.get(URL, params)


def test_it_returns_the_raw_points_of_a_server(logged_in):
    server = make_server("web-1")
    store(server, "cpu_usage_percent", [(T0, 10), (T0 + 10, 20), (T0 + 20, 30)])
    body = q(logged_in, metric="cpu_usage_percent", server="web-1", start=T0, end=T0 + 20).json()
    assert body["tier"] == "raw"
    assert body["series"] == [
        {
            "server": "web-1",
            "metric": "cpu_usage_percent",
            "labels": {},
            "points": [[T0, 10.0], [T0 + 10, 20.0], [T0 + 20, 30.0]],
        }
    ]


def test_it_returns_at_most_max_points_averaged_per_bucket(logged_in):
    server = make_server("web-1")
    store(server, "load1", [(T0 + i, i) for i in range(1000)])
    body = q(logged_in, metric="load1", start=T0, end=T0 + 1000, max_points=10).json()
    points = body["series"][0]["points"]
    assert len(points) <= 10
    assert body["step"] == 100
    assert points[0] == [
        T0 - T0 % 100,
        pytest.approx(sum(range(100 - T0 % 100)) / (100 - T0 % 100)),
    ]
    assert sum(1 for _ in points) >= 9


def test_it_matches_labels_and_lists_several_servers(logged_in):
    for name in ("web-1", "web-2"):
        server = make_server(name)
        store(server, "filesystem_used_percent", [(T0, 40)], {"mountpoint": "/"})
        store(server, "filesystem_used_percent", [(T0, 90)], {"mountpoint": "/data"})
    body = q(
        logged_in, metric="filesystem_used_percent", mountpoint="/data", start=T0 - 1, end=T0 + 1
    ).json()
    assert [(s["server"], s["labels"], s["points"]) for s in body["series"]] == [
        ("web-1", {"mountpoint": "/data"}, [[T0, 90.0]]),
        ("web-2", {"mountpoint": "/data"}, [[T0, 90.0]]),
    ]


def test_it_selects_the_servers_of_a_location(logged_in):
    paris = Location.objects.create(name="paris")
    store(make_server("web-1", location=paris), "load1", [(T0, 1)])
    store(make_server("web-2"), "load1", [(T0, 2)])
    body = q(logged_in, metric="load1", location="paris", start=T0 - 1, end=T0 + 1).json()
    assert [s["server"] for s in body["series"]] == ["web-1"]


def test_it_takes_iso_8601_times(logged_in):
    store(make_server("web-1"), "load1", [(T0, 1)])
    body = q(
        logged_in, metric="load1", start="2026-09-21T00:00:00Z", end="2026-09-23T00:00:00+00:00"
    ).json()
    assert body["series"][0]["points"] == [[T0, 1.0]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "metric is required"),
        ({"metric": "m", "start": "yesterday"}, "neither unix seconds nor an ISO 8601"),
        ({"metric": "m", "start": T0, "end": T0 - 1}, "start must be before end"),
        ({"metric": "m", "max_points": 0}, "max_points must be between"),
        ({"metric": "m", "max_points": "many"}, "bad parameter"),
        ({"metric": "m", "bad-label": "x"}, "is not a label name"),
    ],
)
def test_it_answers_400_naming_a_bad_parameter(logged_in, params, message):
    response = q(logged_in, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_it_needs_credentials(client):
    response = q(client, metric="load1")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_it_accepts_an_api_token(client, user):
    _, token = ApiToken.issue(user, "script")
    response = client.get(URL, {"metric": "load1"}, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert ApiToken.objects.get().last_used is not None


def test_it_refuses_a_wrong_api_token(client, user):
    ApiToken.issue(user, "script")
    response = client.get(URL, {"metric": "load1"}, HTTP_AUTHORIZATION="Token vga_wrong")
    assert response.status_code == 401


def test_it_accepts_basic_auth_with_a_users_password(client, user):
    response = client.get(URL, {"metric": "load1"}, **basic("alice", "secret-pass-1"))
    assert response.status_code == 200
    assert client.get(URL, {"metric": "load1"}, **basic("alice", "wrong")).status_code == 401


def test_an_ingest_token_is_not_an_api_token(client):
    from vigil.testing import make_token

    token = make_token()
    response = client.get(URL, {"metric": "load1"}, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401


def test_it_makes_two_queries_whatever_the_number_of_series(logged_in, django_assert_num_queries):
    for i in range(30):
        store(make_server(f"web-{i}"), "load1", [(T0, i), (T0 + 10, i)])
    # session, user, series, samples
    with django_assert_num_queries(4):
        body = q(logged_in, metric="load1", start=T0 - 1, end=T0 + 11).json()
    assert len(body["series"]) == 30
