from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.api.models import ApiToken
from vigil.metrics import query, state
from vigil.metrics.models import Retention, Rollup1h
from vigil.servers.models import Location
from vigil.testing import basic, make_server, store

URL = "/api/v1/query"
# Recent enough for the raw tier, aligned to every bucket width used below.
T0 = int(time.time()) // 3600 * 3600 - 6 * 3600
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


def servers_and_labels(body) -> list[tuple[str, dict]]:
    return [(s["server"], s["labels"]) for s in body["series"]]


def test_it_returns_the_raw_points_of_a_server(logged_in):
    server = make_server("web-1")
    store(server, "cpu_usage_percent", [(T0, 10), (T0 + 10, 20), (T0 + 20, 30)])
    response = q(logged_in, metric="cpu_usage_percent", server="web-1", start=T0, end=T0 + 20)
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["tier"] == "raw"
    assert body["series"] == [
        {
            "server": "web-1",
            "metric": "cpu_usage_percent",
            "labels": {},
            "points": [[T0, 10.0], [T0 + 10, 20.0], [T0 + 20, 30.0]],
        }
    ]


def test_it_returns_at_most_max_points_averaged_per_bucket_with_their_envelope(logged_in):
    server = make_server("web-1")
    store(server, "load1", [(T0 + i, i) for i in range(1000)])
    body = q(logged_in, metric="load1", start=T0, end=T0 + 999, max_points=10).json()
    (series,) = body["series"]
    assert (body["tier"], body["step"]) == ("raw", 100)
    assert series["points"] == [[T0 + 100 * i, 100 * i + 49.5] for i in range(10)]
    assert series["min"] == [100 * i for i in range(10)]
    assert series["max"] == [100 * i + 99 for i in range(10)]


def test_a_range_that_straddles_a_bucket_still_gets_at_most_max_points(logged_in):
    store(make_server("web-1"), "load1", [(T0 + i, i) for i in range(0, 1001, 5)])
    body = q(logged_in, metric="load1", start=T0 + 50, end=T0 + 1050, max_points=10).json()
    assert body["step"] >= 100
    assert len(body["series"][0]["points"]) <= 10


def test_a_thirty_day_range_is_read_from_hourly_rollups_and_reaches_now(logged_in):
    Retention.objects.create(raw_days=2, rollup_5m_days=7, rollup_1h_days=30)
    server = make_server("web-1")
    hour = int(time.time()) // 3600 * 3600
    store(server, "load1", [(hour + 60, 5.0), (hour + 120, 7.0)])
    series_id = server.series.get().pk
    Rollup1h.objects.bulk_create(
        Rollup1h(series_id=series_id, ts=hour - h * 3600, min=1, max=9, sum=20, count=4, last=2)
        for h in range(1, 30 * 24)
    )
    state.put(state.ROLLUP_1H, hour)
    end = hour + 3599
    body = q(logged_in, metric="load1", start=end - 30 * 86400, end=end, max_points=1000).json()
    (series,) = body["series"]
    assert (body["tier"], body["step"]) == ("1h", 3600)
    # Rollups up to the watermark, then the hour not rolled up yet, from raw.
    assert series["points"][0] == [hour - (30 * 24 - 1) * 3600, 5.0]
    assert series["points"][-1] == [hour, 6.0]
    assert (series["min"][0], series["max"][0]) == (1, 9)
    assert (series["min"][-1], series["max"][-1]) == (5, 7)
    assert len(series["points"]) == len(series["min"]) == len(series["max"]) == 30 * 24


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        (["mountpoint=/data"], ["/data"]),
        (["mountpoint!=/data"], ["/", "/boot"]),
        (["mountpoint=~/d.*"], ["/data"]),
        (["mountpoint=~/d"], []),  # anchored: the whole value must match
        (["mountpoint!~/(data|boot)"], ["/"]),
        (["mountpoint=~/.*", "mountpoint!=/"], ["/boot", "/data"]),
        (["device="], ["/", "/boot", "/data"]),  # a missing label is ""
    ],
)
def test_it_selects_series_with_label_matchers(logged_in, matchers, expected):
    server = make_server("web-1")
    for mountpoint in ("/", "/data", "/boot"):
        store(server, "filesystem_used_percent", [(T0, 40)], {"mountpoint": mountpoint})
    params = [("metric", "filesystem_used_percent"), ("start", T0 - 1), ("end", T0 + 1)]
    params += [("match", m) for m in matchers]
    body = logged_in.get(URL + "?" + urlencode(params)).json()
    assert [s["labels"]["mountpoint"] for s in body["series"]] == expected


def test_a_plain_label_parameter_is_an_equality_matcher_over_several_servers(logged_in):
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


def test_it_takes_several_servers_and_the_servers_of_a_location(logged_in):
    paris = Location.objects.create(name="paris")
    for i in range(4):
        store(make_server(f"web-{i}", location=paris if i < 3 else None), "load1", [(T0, i)])
    params = [("metric", "load1"), ("start", T0 - 1), ("end", T0 + 1)]
    several = logged_in.get(
        URL + "?" + urlencode([*params, ("server", "web-3"), ("server", "web-1")])
    )
    assert [s["server"] for s in several.json()["series"]] == ["web-1", "web-3"]
    located = logged_in.get(URL + "?" + urlencode([*params, ("location", "paris")]))
    assert [s["server"] for s in located.json()["series"]] == ["web-0", "web-1", "web-2"]


def test_it_takes_iso_8601_times(logged_in):
    store(make_server("web-1"), "load1", [(T0, 1)])
    iso = datetime.fromtimestamp(T0, UTC)
    body = q(
        logged_in,
        metric="load1",
        start=iso.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=iso.replace(minute=5).isoformat(),
    ).json()
    assert body["series"][0]["points"] == [[T0, 1.0]]


def test_too_many_series_is_a_400_that_says_how_to_narrow(logged_in, monkeypatch):
    monkeypatch.setattr(query, "MAX_SERIES", 3)
    for i in range(4):
        store(make_server(f"web-{i}"), "load1", [(T0, i)])
    response = q(logged_in, metric="load1", start=T0 - 1, end=T0 + 1)
    assert response.status_code == 400
    assert "4 series match, more than 3" in response.json()["error"]
    assert "location=" in response.json()["error"]
    assert q(logged_in, metric="load1", server="web-1", start=T0 - 1).status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "metric is required"),
        ({"metric": "m", "start": "yesterday"}, "neither unix seconds nor an ISO 8601"),
        ({"metric": "m", "start": "inf"}, "neither unix seconds nor an ISO 8601"),
        ({"metric": "m", "end": "nan"}, "neither unix seconds nor an ISO 8601"),
        ({"metric": "m", "start": "1e300"}, "start must be between"),
        ({"metric": "m", "start": T0, "end": T0 - 1}, "start must be before end"),
        ({"metric": "m", "max_points": 0}, "max_points must be between"),
        ({"metric": "m", "max_points": "many"}, "bad parameter"),
        ({"metric": "m", "bad-label": "x"}, "is not a label name"),
        ({"metric": "m", "match": "mountpoint"}, "is not a label matcher"),
        ({"metric": "m", "match": "9x=1"}, "'9x' is not a label name"),
        ({"metric": "m", "match": "device=~sd[a"}, "bad regular expression 'sd[a' for device"),
        ({"metric": "m", "server": "web\x00"}, "NUL"),
    ],
)
def test_it_answers_400_naming_a_bad_parameter(logged_in, params, message):
    response = q(logged_in, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


PARAM_NAMES = st.sampled_from(
    ["metric", "server", "location", "start", "end", "max_points", "match", "mountpoint", "x-y"]
)
PARAM_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(str),
    st.sampled_from(["a=~(", "a!~.*", "a=b", "a!=", "2026-11-25T10:00:00+25:00", "load1"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=8))
def test_a_random_query_string_gets_an_answer_or_a_400_never_a_500(logged_in, params):
    response = logged_in.get(URL + "?" + urlencode(params))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]


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


@pytest.mark.parametrize("count", [1, 30])
def test_the_number_of_queries_does_not_grow_with_the_series(
    logged_in, django_assert_num_queries, count
):
    for i in range(count):
        store(make_server(f"web-{i}"), "load1", [(T0, i), (T0 + 10, i)])
    # session, user, series, retention, blocks, hot samples
    with django_assert_num_queries(6):
        body = q(logged_in, metric="load1", start=T0 - 1, end=T0 + 11).json()
    assert len(body["series"]) == count
