from __future__ import annotations

import time

import pytest

from vigil.metrics.models import Sample, Series
from vigil.servers.models import IngestToken, Server
from vigil.testing import (
    basic,
    batch,
    bearer,
    gzipped,
    ingest_blocked_by_a_lock,
    make_server,
    make_token,
)

URL = "/api/v1/ingest"
pytestmark = pytest.mark.django_db


def now() -> int:
    return int(time.time())


def post(client, body: bytes, headers: dict, **extra):
    return client.post(URL, data=body, content_type="application/json", **headers, **extra)


def stored(metric: str) -> list[tuple[int, float]]:
    return list(
        Sample.objects.filter(series__metric=metric).order_by("ts").values_list("ts", "value")
    )


def test_it_stores_a_batch_and_answers_204(client):
    t = now()
    response = post(
        client,
        batch("web-1", ("cpu_usage_percent", {}, [[t - 10, 10], [t, 12.5]])),
        bearer(make_token()),
    )
    assert response.status_code == 204
    assert stored("cpu_usage_percent") == [(t - 10, 10.0), (t, 12.5)]
    server = Server.objects.get(host_name="web-1")
    assert server.status == "up" and server.last_seen is not None
    series = Series.objects.get(metric="cpu_usage_percent")
    assert (series.last_ts, series.last_value) == (t, 12.5)


def test_it_keeps_the_good_samples_of_a_batch_with_one_bad_sample(client):
    t = now()
    response = post(
        client,
        batch(
            "web-1",
            ("load1", {}, [[t, 0.5], [t + 10, "high"]]),
            ("load5", {}, [[t, 0.25]]),
        ),
        bearer(make_token()),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "partial write: series[0].points[1]: value must be a number"
    assert (body["written"], body["rejected"]) == (2, 1)
    assert stored("load1") == [(t, 0.5)]
    assert stored("load5") == [(t, 0.25)]


def test_the_same_batch_posted_twice_is_stored_once(client):
    t = now()
    body = batch(
        "web-1",
        ("cpu_usage_percent", {}, [[t - 20, 1], [t - 10, 2], [t, 3]]),
        ("filesystem_used_percent", {"mountpoint": "/"}, [[t, 40]]),
    )
    token = make_token()
    assert post(client, body, bearer(token)).status_code == 204
    assert post(client, body, bearer(token)).status_code == 204
    assert Sample.objects.count() == 4
    assert Series.objects.count() == 2


def test_a_partly_repeated_batch_stores_the_new_samples(client):
    t = now()
    token = make_token()
    post(client, batch("web-1", ("m", {}, [[t - 10, 1]])), bearer(token))
    assert (
        post(client, batch("web-1", ("m", {}, [[t - 10, 1], [t, 2]])), bearer(token)).status_code
        == 204
    )
    assert stored("m") == [(t - 10, 1.0), (t, 2.0)]


def test_a_repeated_sample_within_one_batch_is_stored_once(client):
    t = now()
    response = post(client, batch("web-1", ("m", {}, [[t, 1], [t, 1]])), bearer(make_token()))
    assert response.status_code == 204
    assert stored("m") == [(t, 1.0)]


@pytest.mark.parametrize(
    "headers",
    [
        lambda token: {"HTTP_AUTHORIZATION": f"Token {token}"},
        lambda token: basic("telegraf", token),
        lambda token: basic(token, ""),
    ],
    ids=["token", "basic-password", "basic-user"],
)
def test_it_accepts_the_token_in_every_documented_form(client, headers):
    response = post(client, batch("web-1", ("m", {}, [[now(), 1]])), headers(make_token()))
    assert response.status_code == 204


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer vgi_wrong"},
        {"HTTP_AUTHORIZATION": "Basic !!!"},
        {"HTTP_AUTHORIZATION": "Bearer " + "x" * 5000},
    ],
    ids=["none", "wrong", "garbled-basic", "huge"],
)
def test_it_answers_401_with_a_basic_challenge_without_a_valid_token(client, headers):
    response = post(client, batch("web-1", ("m", {}, [[now(), 1]])), headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert Sample.objects.count() == 0


def test_it_answers_401_to_a_disabled_token(client):
    token = make_token()
    IngestToken.objects.update(enabled=False)
    response = post(client, batch("web-1", ("m", {}, [[now(), 1]])), bearer(token))
    assert response.status_code == 401


def test_a_token_bound_to_a_server_cannot_write_for_another_host(client):
    token = make_token(make_server("db-1"))
    response = post(client, batch("web-1", ("m", {}, [[now(), 1]])), bearer(token))
    assert response.status_code == 403
    assert "bound to server 'db-1'" in response.json()["error"]
    assert Sample.objects.count() == 0


def test_a_token_bound_to_a_server_needs_no_host(client):
    server = make_server("db-1")
    response = post(client, batch(None, ("m", {}, [[now(), 1]])), bearer(make_token(server)))
    assert response.status_code == 204
    assert Series.objects.get().server == server


def test_a_registering_token_needs_a_host(client):
    response = post(client, batch(None, ("m", {}, [[now(), 1]])), bearer(make_token()))
    assert response.status_code == 400
    assert "host name is required" in response.json()["error"]


def test_it_registers_new_servers_by_host_name(client):
    token = make_token()
    for host in ("web-1", "web-2", "web-1"):
        post(client, batch(host, ("m", {}, [[now(), 1]])), bearer(token))
    assert sorted(Server.objects.values_list("name", flat=True)) == ["web-1", "web-2"]


def test_it_accepts_a_gzip_body(client):
    body = gzipped(batch("web-1", ("m", {}, [[now(), 1]])))
    response = post(client, body, bearer(make_token()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 204
    assert Sample.objects.count() == 1


def test_it_answers_400_to_a_broken_gzip_body(client):
    response = post(client, b"not gzip", bearer(make_token()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]


def test_it_answers_415_to_an_unknown_encoding(client):
    response = post(client, b"x", bearer(make_token()), HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415


def test_it_answers_413_to_a_body_over_the_limit(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = batch("web-1", ("m", {}, [[now(), i] for i in range(200)]))
    response = post(client, body, bearer(make_token()))
    assert response.status_code == 413
    assert Sample.objects.count() == 0


def test_it_answers_413_to_a_gzip_bomb(client, settings):
    settings.INGEST_MAX_DECODED_BYTES = 100_000
    response = post(
        client, gzipped(b" " * 10_000_000), bearer(make_token()), HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]


def test_it_answers_400_naming_the_problem_of_an_unreadable_body(client):
    response = post(client, b"{nope", bearer(make_token()))
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not valid JSON")


def test_it_answers_405_to_get(client):
    assert client.get(URL).status_code == 405


def test_no_query_per_sample_or_series_once_the_series_are_known(
    client, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    token = make_token()
    t = now()
    series = [("m", {"n": str(i)}, [[t - j, j] for j in range(50)]) for i in range(40)]
    with django_capture_on_commit_callbacks(execute=True):
        post(client, batch("web-1", *series), bearer(token))
    # token, savepoint, samples (in a savepoint of its own on PostgreSQL),
    # newest values, last_seen, release: 40 series, 7 queries at most.
    with django_assert_max_num_queries(7):
        post(client, batch("web-1", *[(m, lb, [[t + 1, 1]]) for m, lb, _ in series]), bearer(token))
    assert Sample.objects.count() == 2040


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_with_retry_after_while_the_database_is_locked(client, settings):
    """A second connection holds the sample table; the writer cannot commit in time."""
    token = make_token(make_server("web-1"))
    with ingest_blocked_by_a_lock(settings):
        response = post(client, batch("web-1", ("m", {}, [[now(), 1]])), bearer(token))
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)


def test_refused_samples_are_counted_on_their_server_and_shown_on_its_page(client):
    t = now()
    token = make_token()
    body = batch("web-1", ("load1", {}, [[t, 0.5], [t + 1, "<b>high</b>"], [t + 2, None]]))
    assert post(client, body, bearer(token)).status_code == 400
    server = Server.objects.get(host_name="web-1")
    assert server.rejected_samples == 2
    assert server.last_rejection == "series[0].points[1]: value must be a number"
    assert server.last_rejection_at is not None

    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    html = client.get(f"/servers/{server.pk}/").content.decode()
    assert "Ingest refused 2 samples from this server" in html


def test_a_wholly_refused_batch_of_a_bound_token_is_counted_on_its_server(client):
    server = make_server("db-1")
    response = post(client, batch(None, ("m", {}, [[now(), "x"]])), bearer(make_token(server)))
    assert response.status_code == 400
    server.refresh_from_db()
    assert server.rejected_samples == 1
