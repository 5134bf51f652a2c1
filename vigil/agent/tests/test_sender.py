from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import orjson
import pytest

from vigil.agent.backoff import Backoff
from vigil.agent.sender import Sender, ingest_url, merge_batches
from vigil.agent.spool import Spool
from vigil.agent.tests.receiver import Receiver, keys_of, wait_until

T0 = 1_732_500_000


def fill(spool: Spool, count: int, points: int = 3, host: str = "web-1", start: int = T0) -> None:
    """`count` batches of `points` series, one point each, ten seconds apart."""
    for i in range(count):
        ts = start + 10 * i
        series = [
            {
                "metric": "filesystem_used_percent",
                "labels": {"mountpoint": f"/m{j}"},
                "points": [[ts, 1.0]],
            }
            for j in range(points)
        ]
        spool.write(host, series, now=ts)


def spooled_keys(spool: Spool) -> set[Any]:
    keys: set[Any] = set()
    for entry in spool.pending():
        keys |= keys_of(orjson.loads(entry.path.read_bytes()))
    return keys


def make_sender(spool: Spool, receiver: Receiver, **kw: Any) -> Sender:
    kw.setdefault("backoff", Backoff(1.0, 60.0, random_fraction=lambda: 1.0))
    return Sender(spool, receiver.url, "s3cret", **kw)


def test_it_merges_the_oldest_batches_into_one_gzipped_request_and_deletes_them_on_204(
    spool: Spool, receiver: Receiver
) -> None:
    fill(spool, 4)
    expected = spooled_keys(spool)
    assert make_sender(spool, receiver).step() == 0.0
    [request] = receiver.requests
    assert request.path == "/api/v1/ingest"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.doc["host"] == "web-1"
    # One series per (metric, labels), all four collections' points in it, in order.
    assert [len(s["points"]) for s in request.doc["series"]] == [4, 4, 4]
    assert [p[0] for p in request.doc["series"][0]["points"]] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert keys_of(request.doc) == expected
    assert len(spool) == 0 and list(spool.directory.glob("*.json")) == []
    assert make_sender(spool, receiver).step() is None


def test_it_sends_at_most_max_points_per_request_oldest_first(
    spool: Spool, receiver: Receiver
) -> None:
    fill(spool, 5, points=4)
    sender = make_sender(spool, receiver, max_points=10)
    while sender.step() is not None:
        pass
    assert [r.points for r in receiver.requests] == [8, 8, 4]
    timestamps = [s["points"][0][0] for r in receiver.requests for s in r.doc["series"][:1]]
    assert timestamps == [T0, T0 + 20, T0 + 40]


def test_it_does_not_merge_batches_of_different_host_names(
    spool: Spool, receiver: Receiver
) -> None:
    fill(spool, 2, host="old-name")
    fill(spool, 2, host="new-name", start=T0 + 100)
    sender = make_sender(spool, receiver)
    while sender.step() is not None:
        pass
    assert [r.doc["host"] for r in receiver.requests] == ["old-name", "new-name"]


def test_it_keeps_the_batches_on_503_and_waits_as_long_as_retry_after_says(
    spool: Spool, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(spool, 3)
    expected = spooled_keys(spool)
    receiver.answer(503, b'{"error": "overloaded"}', times=2, Retry_After="7")
    sender = make_sender(spool, receiver)
    with caplog.at_level(logging.INFO, logger="vigil.agent"):
        assert sender.step() == pytest.approx(7.7)  # 7 s plus at most 10 % jitter
        assert sender.step() == pytest.approx(7.7)
        assert len(spool) == 3
        assert sender.step() == 0.0
    assert len(spool) == 0
    assert [r.status for r in receiver.requests] == [503, 503, 204]
    assert receiver.accepted_keys() == expected
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unavailable" in m]) == 1
    assert "HTTP 503" in messages[0] and "overloaded" in messages[0]
    assert len([m for m in messages if "accepts data again after 2 failed attempts" in m]) == 1


def test_its_loop_sleeps_out_retry_after_before_sending_again(
    spool: Spool, receiver: Receiver
) -> None:
    fill(spool, 1)
    receiver.answer(503, Retry_After="1")
    stop = threading.Event()
    thread = threading.Thread(target=make_sender(spool, receiver).run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: len(receiver.requests) == 2, timeout=3)
    finally:
        stop.set()
        spool.wake()
        thread.join(3)
    first, second = receiver.requests
    assert 1.0 <= second.at - first.at < 1.5
    assert len(spool) == 0


@pytest.mark.parametrize("status", [429, 500, 502, 504, 404, 409])
def test_it_keeps_the_batches_and_backs_off_on_answers_that_may_change(
    spool: Spool, receiver: Receiver, status: int
) -> None:
    fill(spool, 2)
    receiver.answer(status, times=3)
    sender = make_sender(spool, receiver)
    assert [sender.step() for _ in range(3)] == [1.0, 2.0, 4.0]
    assert len(spool) == 2
    assert sender.step() == 0.0 and len(spool) == 0


def test_it_keeps_the_batches_and_says_so_loudly_when_the_token_is_rejected(
    spool: Spool, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(spool, 2)
    receiver.answer(401, b'{"error": "a valid ingest token is required"}', times=3)
    sender = make_sender(spool, receiver)
    with caplog.at_level(logging.INFO, logger="vigil.agent"):
        assert [sender.step() for _ in range(3)] == [1.0, 2.0, 4.0]
    assert len(spool) == 2
    [error] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert error.levelno == logging.ERROR
    assert "ingest token rejected: HTTP 401" in error.getMessage()
    assert "a valid ingest token is required" in error.getMessage()


def test_it_drops_what_the_server_rejected_for_good_on_400_and_logs_why(
    spool: Spool, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(spool, 2)
    body = b'{"error": "partial write: series[0]: metric must start with a letter", "written": 5}'
    receiver.answer(400, body)
    with caplog.at_level(logging.ERROR, logger="vigil.agent"):
        assert make_sender(spool, receiver).step() == 0.0
    assert len(spool) == 0
    [error] = caplog.records
    assert "partial write: series[0]: metric must start with a letter" in error.getMessage()


def test_it_sends_merged_batches_one_by_one_after_413_and_drops_one_that_is_too_big_alone(
    spool: Spool, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(spool, 3)
    # The merged request, then the first batch alone, are too large; the others pass.
    receiver.answer(413, b'{"error": "body is larger than 1000 bytes"}', times=2)
    sender = make_sender(spool, receiver)
    with caplog.at_level(logging.WARNING, logger="vigil.agent"):
        assert sender.step() == 0.0
    assert [(r.status, r.points) for r in receiver.requests] == [
        (413, 9),
        (413, 3),
        (204, 3),
        (204, 3),
    ]
    assert len(spool) == 0
    assert "one by one" in caplog.records[0].getMessage()
    assert "rejected 3 samples" in caplog.records[1].getMessage()
    # It does not merge that much again.
    assert sender.max_points == 4


def test_it_keeps_the_batches_while_the_server_is_down_and_logs_it_once(
    spool: Spool, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    fill(spool, 2)
    expected = spooled_keys(spool)
    receiver.stop()
    sender = make_sender(spool, receiver)
    with caplog.at_level(logging.INFO, logger="vigil.agent"):
        assert [sender.step() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
        assert len(spool) == 2
        receiver.start()
        assert sender.step() == 0.0
    assert receiver.accepted_keys() == expected
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "unavailable (ConnectionRefusedError" in messages[0]
    assert "accepts data again after 4 failed attempts" in messages[1]


def test_it_gives_up_on_a_server_that_does_not_answer_within_the_timeout(
    spool: Spool,
) -> None:
    fill(spool, 1)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        sender = Sender(spool, f"http://127.0.0.1:{port}", "t", timeout=0.2)
        assert sender.step() > 0
    assert len(spool) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://vigil:8000", ("http", "vigil", 8000, "/api/v1/ingest")),
        ("https://example.com/", ("https", "example.com", None, "/api/v1/ingest")),
        ("https://example.com/vigil/", ("https", "example.com", None, "/vigil/api/v1/ingest")),
        ("http://h/api/v1/ingest", ("http", "h", None, "/api/v1/ingest")),
    ],
)
def test_it_posts_to_the_ingest_path_under_the_server_url(url: str, expected: tuple) -> None:
    assert ingest_url(url) == expected


@pytest.mark.parametrize("url", ["vigil:8000", "ftp://vigil", "http://"])
def test_it_refuses_a_url_that_is_not_http(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        ingest_url(url)


def test_merging_keeps_series_with_different_labels_apart() -> None:
    a = {"host": "h", "series": [{"metric": "m", "labels": {"d": "a"}, "points": [[1, 1.0]]}]}
    b = {"host": "h", "series": [{"metric": "m", "labels": {"d": "b"}, "points": [[1, 2.0]]}]}
    c = {"host": "h", "series": [{"metric": "m", "labels": {"d": "a"}, "points": [[2, 3.0]]}]}
    assert merge_batches([a, b, c]) == [
        {"metric": "m", "labels": {"d": "a"}, "points": [[1, 1.0], [2, 3.0]]},
        {"metric": "m", "labels": {"d": "b"}, "points": [[1, 2.0]]},
    ]
    assert a["series"][0]["points"] == [[1, 1.0]]  # the inputs are left alone
